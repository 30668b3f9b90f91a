"""Pictures of a search tree: a PNG to glance at, an HTML page to read every step in.

Both draw a tree JSON as loaded by ``stepwise.search.tree.load_tree`` (a networkx graph);
they never need the explorer. The best path (the max-Q child from the root down) is drawn
thick, and at each parent on it the *chosen* (max-Q) and *rejected* (min-Q) children are
marked: the pairs that the preference data is made of. Labels, prompts and completions
come from models and documents, so the HTML escapes every text it shows.

The PNG is meant to be read at a glance: each parent's unvisited children are one grey
"N unvisited" node, the tree is cut at the depth that keeps it readable (the caption says
so; the HTML has every node), every node is labelled with its action and its Q and
visits, and abbreviated labels are spelled out (``action_key``).
"""

from __future__ import annotations

import html
import io
import itertools
import json
from pathlib import Path
from typing import Any

import networkx as nx

from stepwise.files import write_atomic
from stepwise.search.tree import best_path as tree_best_path
from stepwise.search.tree import rank, visited_children

MAX_LEAVES = 28  # the PNG draws only as deep as keeps this many leaves (or the first level)


# ---- what the tree says -------------------------------------------------------------------

def root(graph: nx.DiGraph) -> int:
    """The node without a parent (ValueError for a graph that has none)."""
    found = next((n for n in sorted(graph.nodes) if graph.in_degree(n) == 0), None)
    if found is None:
        raise ValueError("the tree has no root node")
    return found


def children(graph: nx.DiGraph, node: int) -> list[int]:
    return sorted(graph.successors(node))


def best_path(graph: nx.DiGraph) -> list[int]:
    """From the root, the max-Q visited child at each level: the path pairs are taken on."""
    root(graph)  # a graph without a root is refused here, with the reason
    return tree_best_path(graph)


def marked_pairs(graph: nx.DiGraph) -> dict[int, tuple[int, int]]:
    """Per parent on the best path: (chosen, rejected), where the rejected has a lower Q."""
    pairs = {}
    for parent in best_path(graph)[:-1]:
        kids = sorted(visited_children(graph, parent), key=lambda c: rank(graph, c))
        chosen, rejected = kids[-1], kids[0]
        if rank(graph, rejected)[0] < rank(graph, chosen)[0]:
            pairs[parent] = (chosen, rejected)
    return pairs


def _simulated(graph: nx.DiGraph) -> bool:
    """A synthetic world's numbers are labelled as such: the ``simulated`` attr, or sim* envs."""
    return bool(graph.graph.get("simulated")) or str(graph.graph.get("env", "")).startswith("sim")


def title(graph: nx.DiGraph) -> str:
    attrs = graph.graph
    sims = graph.nodes[root(graph)].get("visits") or 0
    text = f"{attrs.get('task', '?')} · {attrs.get('env', '?')} · {sims} simulations"
    return text + (" (simulated)" if _simulated(graph) else "")


def _pruned(graph: nx.DiGraph, max_depth: int | None) -> nx.DiGraph:
    if max_depth is None:
        return graph
    return graph.subgraph([n for n, d in graph.nodes(data="depth") if (d or 0) <= max_depth])


def action_key(graph: nx.DiGraph) -> dict[str, str]:
    """What each part of an abbreviated label stands for, read from the tree itself.

    Where a node's action is a list of names and its label joins as many short parts with
    "+" (LongMT: ``["view_summaries", "view_pages"]`` labelled ``S+P``), each part names the
    matching element. Only one-to-one pairs are kept (a part standing for two names, or a
    name given two parts, is no abbreviation), so a tree whose labels are not
    abbreviations has no key: search code knows no agent's labels.
    """
    key: dict[str, set[str]] = {}
    for _, attrs in graph.nodes(data=True):
        action, label = attrs.get("action"), str(attrs.get("label") or "")
        if not (isinstance(action, list) and action and all(isinstance(a, str) for a in action)):
            continue
        parts = label.split("+")
        if len(parts) != len(action):
            continue
        for part, name in zip(parts, action, strict=True):
            if part != name:
                key.setdefault(part, set()).add(name)
    claimed: dict[str, int] = {}  # name -> how many parts stand for it
    for names in key.values():
        for name in names:
            claimed[name] = claimed.get(name, 0) + 1
    return {part: name for part, names in key.items() if len(names) == 1
            for name in names if claimed[name] == 1}


def key_text(graph: nx.DiGraph) -> str:
    """The abbreviations as one line ("S = view_summaries, P = view_pages"), or ""."""
    return ", ".join(f"{part} = {name}" for part, name in action_key(graph).items())


def _leaves(graph: nx.DiGraph) -> int:
    return sum(1 for n in graph.nodes if not graph.out_degree(n))


def _unvisited_folded(graph: nx.DiGraph) -> nx.DiGraph:
    """A copy where each parent's unvisited children (two or more) are one grey node
    labelled "N unvisited", placed after its visited siblings. Unvisited nodes were never
    expanded, so nothing hangs below them."""
    folded = nx.DiGraph(graph)
    next_id = max(graph.nodes, default=0) + 1
    for parent in sorted(graph.nodes):
        idle = [c for c in children(graph, parent) if not graph.nodes[c].get("visits")]
        if len(idle) < 2:
            continue
        folded.remove_nodes_from(idle)
        folded.add_node(next_id, depth=graph.nodes[idle[0]].get("depth"), visits=0,
                        label=f"{len(idle)}\nunvisited", folded=len(idle))
        folded.add_edge(parent, next_id)
        next_id += 1
    return folded


def readable_depth(graph: nx.DiGraph) -> int | None:
    """The deepest cut that keeps at most ``MAX_LEAVES`` leaves (at least depth 1), or None
    when the whole tree fits."""
    if _leaves(graph) <= MAX_LEAVES:
        return None
    deepest = max((d or 0 for _, d in graph.nodes(data="depth")), default=0)
    for depth in range(deepest - 1, 0, -1):
        if _leaves(_pruned(graph, depth)) <= MAX_LEAVES:
            return depth
    return min(1, deepest)


def node_text(attrs: dict) -> str:
    """A node's label in the PNG: its action, then Q and visits when it was visited."""
    label = str(attrs.get("label", ""))
    if not attrs.get("visits") or attrs.get("folded"):
        return label
    return f"{label}\nQ {attrs.get('q') or 0.0:.3f}\nn={attrs['visits']}"


# ---- layout -------------------------------------------------------------------------------

def layout(graph: nx.DiGraph) -> dict[int, tuple[float, float]]:
    """A tidy top-down layout: leaves 1 apart left to right, parents centred over children.

    Subtrees take disjoint x ranges, so two nodes at one depth are always >= 1 apart.
    """
    pos: dict[int, tuple[float, float]] = {}
    next_leaf = 0.0
    # iterative post-order, so deep trees do not hit the recursion limit
    stack: list[tuple[int, bool]] = [(root(graph), False)]
    while stack:
        node, done = stack.pop()
        kids = children(graph, node)
        depth = -float(graph.nodes[node].get("depth") or 0)
        if not kids:
            pos[node], next_leaf = (next_leaf, depth), next_leaf + 1
        elif done:
            pos[node] = ((pos[kids[0]][0] + pos[kids[-1]][0]) / 2, depth)
        else:
            stack.append((node, True))
            stack.extend((kid, False) for kid in reversed(kids))
    return pos


# ---- PNG ----------------------------------------------------------------------------------

def tree_figure(graph: nx.DiGraph, *, max_depth: int | None = None,
                highlight_pairs: bool = True):
    """The tree as a matplotlib Figure: colour = Q, area = visits, thick = best path.

    Without ``max_depth`` the figure is cut at ``readable_depth``; labels are drawn while
    the drawn tree has at most ``MAX_LEAVES`` leaves (a first level wider than that has
    none).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg, without a global switch
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    folded = _unvisited_folded(graph)
    cut = readable_depth(folded) if max_depth is None else max_depth
    shown = _pruned(folded, cut)
    pos = layout(shown)
    nodes = sorted(shown.nodes)
    leaves = _leaves(shown)
    depth = max(-y for _, y in pos.values())
    labelled = leaves <= MAX_LEAVES
    fig = Figure(figsize=(min(max(6.0, 1.5 + 0.6 * leaves), 18.0),
                          3.0 + (1.5 if labelled else 1.0) * depth), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title(graph))

    path = best_path(shown)
    on_path = set(itertools.pairwise(path))
    for parent, child in shown.edges:
        thick = (parent, child) in on_path
        ax.plot(*zip(pos[parent], pos[child], strict=True), color="black" if thick else "0.7",
                linewidth=3.0 if thick else 0.8, zorder=1)

    qs = [a.get("q") or 0.0 for _, a in shown.nodes(data=True) if a.get("visits")]
    norm = Normalize(min(qs, default=0.0), max(qs, default=1.0))
    if norm.vmin == norm.vmax:
        norm = Normalize(norm.vmin - 0.5, norm.vmax + 0.5)
    colormap = "viridis"
    most = max((v or 0 for _, v in shown.nodes(data="visits")), default=0) or 1
    area = {n: max(30.0, 800.0 * (shown.nodes[n].get("visits") or 0) / most) for n in nodes}
    outline = {}
    if highlight_pairs:
        for chosen, rejected in marked_pairs(shown).values():
            outline[chosen], outline[rejected] = "tab:green", "tab:red"
    for visited in (True, False):  # unvisited nodes have no Q: drawn light grey
        group = [n for n in nodes if bool(shown.nodes[n].get("visits")) == visited]
        if not group:
            continue
        style = ({"c": [shown.nodes[n].get("q") or 0.0 for n in group], "cmap": colormap,
                  "norm": norm} if visited else {"color": "0.85"})
        ax.scatter([pos[n][0] for n in group], [pos[n][1] for n in group],
                   s=[area[n] for n in group],
                   edgecolors=[outline.get(n, "0.3") for n in group],
                   linewidths=[2.5 if n in outline else 0.6 for n in group],
                   zorder=2, **style)
    if labelled:
        for node in nodes:
            ax.annotate(node_text(shown.nodes[node]), pos[node], fontsize=7,
                        xytext=(0, -area[node] ** 0.5 / 2 - 4), textcoords="offset points",
                        ha="center", va="top", bbox={"boxstyle": "round,pad=0.1", "fc": "white",
                                                     "ec": "none", "alpha": 0.8},
                        zorder=4)
    fig.colorbar(ScalarMappable(norm=norm, cmap=colormap), ax=ax, label="Q", shrink=0.8)

    legend = [Line2D([], [], color="black", linewidth=3, label="best path")]
    if highlight_pairs:
        legend += [Line2D([], [], marker="o", linestyle="", markerfacecolor="white",
                          markeredgecolor=color, markeredgewidth=2.5, label=name)
                   for name, color in (("chosen (max Q)", "tab:green"),
                                       ("rejected (min Q)", "tab:red"))]
    legend.append(Line2D([], [], marker="o", linestyle="", color="0.85", label="unvisited"))
    fig.legend(handles=legend, loc="outside lower center", ncols=len(legend), fontsize=8,
               frameon=False, title=caption(graph, cut, labelled), title_fontsize=8)
    ax.margins(0.06, 0.15)
    return fig


def caption(graph: nx.DiGraph, cut: int | None, labelled: bool) -> str:
    """What the picture's labels mean, what its abbreviations stand for, and what it leaves
    out."""
    q = "best" if (graph.graph.get("options") or {}).get("q") == "max" else "mean"
    lines = [f"node: its action; Q = {q} reward of the rollouts through it, n = visits"
             if labelled else "too wide for labels: the HTML view has every node"]
    if key := key_text(graph):
        lines.append(key)
    deepest = max((d or 0 for _, d in graph.nodes(data="depth")), default=0)
    if cut is not None and cut < deepest:
        hidden = graph.number_of_nodes() - sum(
            1 for n, d in graph.nodes(data="depth") if (d or 0) <= cut)
        lines.append(f"drawn to depth {cut} of {deepest}: {hidden} deeper "
                     f"node{'s' * (hidden != 1)} not shown")
    return "\n".join(lines)


def write_png(graph: nx.DiGraph, path: str | Path, **kwargs: Any) -> Path:
    """Draw the tree into a PNG file (written beside, then renamed into place)."""
    path = Path(path)
    fig = tree_figure(graph, **kwargs)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue())
    return path


# ---- HTML ---------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
ul { list-style: none; padding-left: 1.4em; border-left: 1px solid #ddd; }
summary { cursor: pointer; }
.label { font-weight: 600; }
.stats { color: #555; font-family: ui-monospace, monospace; font-size: 12px; }
.tag { font-size: 11px; padding: 0 .4em; border-radius: 3px; color: white; }
.best { background: #333; } .chosen { background: #2a8a2a; } .rejected { background: #c03030; }
.unvisited > details > summary { color: #999; }
pre { background: #f6f6f6; padding: .5em; white-space: pre-wrap; font-size: 12px; }
"""


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _message_text(message: dict) -> str:
    content = message.get("content")
    lines = [f"[{message.get('role', '?')}]"]
    if content:
        lines.append(content if isinstance(content, str) else json.dumps(content,
                                                                          ensure_ascii=False))
    for call in message.get("tool_calls") or []:
        function = call.get("function", call)
        lines.append(f"-> {function.get('name')}({function.get('arguments', '')})")
    return "\n".join(lines)


def _messages_block(attrs: dict) -> str:
    parts = []
    for key in ("completion", "prompt"):
        if attrs.get(key):
            text = "\n\n".join(_message_text(m) for m in attrs[key])
            parts.append(f"<details><summary>{key} ({len(attrs[key])} messages)</summary>"
                         f"<pre>{html.escape(text)}</pre></details>")
    return "".join(parts)


def tree_html(graph: nx.DiGraph, *, max_depth: int | None = None) -> str:
    """A self-contained page: the tree as nested <details>, every text escaped."""
    shown = _pruned(graph, max_depth)
    path = set(best_path(shown))
    marks = {}
    for chosen, rejected in marked_pairs(shown).values():
        marks[chosen], marks[rejected] = "chosen", "rejected"

    def item(node: int) -> str:
        a = shown.nodes[node]
        tags = [name for name, on in (("best", node in path), (marks.get(node), node in marks))
                if on]
        action = json.dumps(a.get("action"), ensure_ascii=False)
        stats = (f"action={action} visits={a.get('visits') or 0} Q={_fmt(a.get('q'))} "
                 f"score={_fmt(a.get('score'))}")
        if a.get("tokens"):  # 0 is what a tree holds when no token count was recorded
            stats += f" tokens={a['tokens']}"
        summary = (f"<span class=\"label\">{html.escape(str(a.get('label', node)))}</span> "
                   f"<span class=\"stats\">#{node} {html.escape(stats)}</span> "
                   + " ".join(f"<span class=\"tag {t}\">{t}</span>" for t in tags))
        kids = "".join(item(kid) for kid in children(shown, node))
        css = "" if a.get("visits") else " class=\"unvisited\""
        return (f"<li{css}><details{' open' if node in path else ''}><summary>{summary}"
                f"</summary>{_messages_block(a)}{f'<ul>{kids}</ul>' if kids else ''}"
                f"</details></li>")

    heading = html.escape(title(graph))
    key = key_text(graph)
    key_line = f"<p class=\"stats\">{html.escape(key)}</p>" if key else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{heading}</title><style>{STYLE}</style></head><body>"
            f"<h1>{heading}</h1><p class=\"stats\">best path drawn open; per parent on it, "
            f"<span class=\"tag chosen\">chosen</span> = max Q, "
            f"<span class=\"tag rejected\">rejected</span> = min Q</p>"
            f"{key_line}"
            f"<ul>{item(root(shown))}</ul></body></html>\n")


def write_html(graph: nx.DiGraph, path: str | Path, **kwargs: Any) -> Path:
    write_atomic(path, tree_html(graph, **kwargs))
    return Path(path)
