"""Game times as integer microseconds, so a stream's times are numpy int64 columns.

Integer microseconds since 1970 represent every ``datetime`` exactly (floats of hours
would round), and hours between two of them are one subtraction and one division over a
whole column. A stream's times are all naive or all timezone-aware: mixing them has no
meaning (Python refuses to compare them), so the first time seen decides.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_AWARE = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class GameTimes:
    """Converts a stream's datetimes to microseconds and back (aware ones come back in UTC)."""

    def __init__(self) -> None:
        self.aware: bool | None = None  # undecided until the first time is seen

    def micros(self, moment: datetime) -> int:
        """``moment`` as microseconds since 1970, refusing a mix of naive and aware times."""
        if not isinstance(moment, datetime):
            raise TypeError(f"a game time is a datetime, not {type(moment).__name__}")
        aware = moment.utcoffset() is not None
        if self.aware is None:
            self.aware = aware
        elif aware != self.aware:
            held = "timezone-aware" if self.aware else "naive"
            raise ValueError(f"this memory stream holds {held} datetimes; {moment!r} is not")
        return (moment - (_EPOCH_AWARE if aware else _EPOCH_NAIVE)) // _MICROSECOND

    def moment(self, micros: int) -> datetime:
        """The datetime ``micros`` stands for."""
        return (_EPOCH_AWARE if self.aware else _EPOCH_NAIVE) + timedelta(microseconds=int(micros))
