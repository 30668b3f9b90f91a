"""Tables that stay readable at any width: a wide terminal, COLUMNS, or 80 columns in a pipe.

Left to itself, rich squeezes a table that is too wide by cutting cells and headers to a
few characters and an ellipsis, so numbers and texts are lost. A ``ReadableTable`` picks
its layout when it is printed, from the width it is given: the full table when it fits;
else a table whose text columns wrap (never narrower than ``TEXT_MIN``) while numbers and
headers stay whole; else, for a table of many short columns (a compare table of numbers),
the same without borders, one space between columns, every cell whole; else, when even that
cannot fit, each row as ``key: value`` lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text, TextType

TEXT_MIN = 20  # a text column narrower than this reads as fragments
Cell = str | int | float | bool | Text | None


@dataclass(frozen=True)
class Column:
    """A column's header, and whether its cells are text that may wrap over lines.

    Numbers, ids, counts and times do not wrap: they are printed whole or not in a table.
    """

    header: str
    wrap: bool = True
    right: bool = False  # right-aligned, as numbers are


def number(header: str) -> Column:
    """A column of numbers (or counts such as ``3/4``): right-aligned, never wrapped or cut."""
    return Column(header, wrap=False, right=True)


@dataclass(frozen=True)
class Row:
    """A row with a look of its own: a subtotal in bold, the end of a section of rows."""

    cells: Sequence[Cell]
    style: str | None = None
    end_section: bool = False


def cell_text(value: Cell) -> Text:
    """A cell as rich text; a plain string is shown as written, never read as markup."""
    if isinstance(value, Text):
        return value.copy()
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    return Text("-" if value is None else str(value))


def _widest_line(text: str) -> int:
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _widest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def _shared_out(least: list[int], most: list[int], room: int) -> list[int]:
    """Widths from ``least`` toward ``most`` within ``room``: columns that need little more
    get all of it, the others share what is left evenly."""
    widths = list(least)
    room -= sum(least)
    growing = sorted(range(len(least)), key=lambda i: most[i] - least[i])
    for done, i in enumerate(growing):
        grow = min(most[i] - least[i], room // (len(growing) - done))
        widths[i] += grow
        room -= grow
    return widths


class ReadableTable:
    """Rows under headers, laid out for the width they are printed at (see the module).

    A cell or title given as a string is printed as written; give a ``Text`` (such as
    ``Text.from_markup(...)``) for colours.
    """

    def __init__(self, columns: Sequence[Column | str], rows: Iterable[Sequence[Cell] | Row],
                 title: TextType | None = None) -> None:
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        given = [row if isinstance(row, Row) else Row(row) for row in rows]
        self.rows = [[cell_text(value) for value in row.cells] for row in given]
        self.looks = [(row.style, row.end_section) for row in given]
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"a row of {len(row)} cells under {len(self.columns)} columns")
        self.title = Text(title) if isinstance(title, str) else title

    def widths(self, width: int, compact: bool = False) -> list[int] | None:
        """Each column's width in a table ``width`` cells wide; None when it cannot fit.
        ``compact``: the borderless table, whose cells are never wrapped."""
        most, least = [], []
        for index, column in enumerate(self.columns):
            cells = max([0] + [_widest_line(row[index].plain) for row in self.rows])
            most.append(max(_widest_line(column.header), cells))
            shortest = min(cells, TEXT_MIN) if column.wrap and not compact else cells
            least.append(max(_widest_word(column.header), shortest, 1))
        if compact:  # a space between columns
            room = width - len(self.columns) + 1
        else:  # a border before each column and after the last, a space either side of a cell
            room = width - 3 * len(self.columns) - 1
        if sum(most) <= room:
            return most
        if sum(least) > room:
            return None
        return _shared_out(least, most, room)

    def table(self, widths: list[int], compact: bool = False) -> Table:
        wrapped = not compact and (any(w < _widest_line(row[i].plain) for row in self.rows
                                       for i, w in enumerate(widths)) or any(
            "\n" in cell.plain for row in self.rows for cell in row))
        table = (Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD,
                       show_edge=False, padding=0) if compact else
                 Table(title=self.title, title_justify="left", show_lines=wrapped))
        for column, width in zip(self.columns, widths):
            header = Text(column.header, no_wrap=False)  # a header may wrap where cells do not
            table.add_column(header, width=width, no_wrap=not column.wrap, overflow="fold",
                             justify="right" if column.right else "left",
                             vertical="bottom" if compact else "top")
        for row, (style, end_section) in zip(self.rows, self.looks):
            table.add_row(*row, style=style, end_section=end_section)
        return table

    def records(self) -> Table:
        """Each row as ``header: value`` lines (none for an empty cell), a blank line
        between rows."""
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for index, (row, (style, _)) in enumerate(zip(self.rows, self.looks)):
            if index:
                grid.add_row("", "")
            for column, cell in zip(self.columns, row):
                if cell.plain:  # a cell left empty (a subtotal's) says nothing
                    grid.add_row(Text(f"{' '.join(column.header.split())}:", style="bold"),
                                 cell, style=style)
        return grid

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for compact in (False, True):
            widths = self.widths(options.max_width, compact)
            if widths is not None:
                yield self.table(widths, compact)
                return
        if self.title is not None:
            yield self.title
        yield self.records()
