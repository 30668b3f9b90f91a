"""What a run costs: model requests, tokens in and out, and wall time, per agent and per
game hour (the paper's reference code needed 13,705 requests and 13 hours for 3,665 steps).

Every request of a run goes through ``Mind.ask``, which adds it to the run's ``Ledger``
under the asking agent and the game hour it was asked in. A step's figures are saved in
the step's own transaction (table ``generative_costs``), so a run killed mid-step keeps
exactly what its committed steps asked, and a resumed run goes on adding. Tokens are what
the model reports (a rule-based stand-in counts words); wall time is the one figure that
differs between two runs of the same world. It is each request's own wall time, summed:
when agents think at once (``--concurrency``) their requests overlap, and the sum is more
than the time the run took.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

SCHEMA = ("CREATE TABLE IF NOT EXISTS generative_costs (hour TEXT NOT NULL, agent TEXT NOT "
          "NULL, requests INTEGER NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER "
          "NOT NULL, seconds REAL NOT NULL, PRIMARY KEY (hour, agent))")


@dataclass
class Usage:
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.seconds += other.seconds

    def as_dict(self) -> dict:
        return {"requests": self.requests, "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out, "seconds": round(self.seconds, 3)}


def game_hour(now: datetime) -> str:
    return f"{now:%Y-%m-%d %H}:00"


class Ledger:
    """Requests not yet saved, by (game hour, agent); ``clock`` gives the game time. The
    agents of a concurrent step add from their threads at once."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.pending: dict[tuple[str, str], Usage] = {}
        self._lock = threading.Lock()

    def add(self, agent: str, tokens_in: int, tokens_out: int, seconds: float) -> None:
        with self._lock:
            usage = self.pending.setdefault((game_hour(self.clock()), agent), Usage())
            usage.add(Usage(1, int(tokens_in or 0), int(tokens_out or 0), seconds))

    def discard(self) -> Usage:
        """Forget what is pending (a step that did not commit, an interview); its total."""
        total = Usage()
        for usage in self.pending.values():
            total.add(usage)
        self.pending.clear()
        return total

    def save(self, db: sqlite3.Connection) -> None:
        """Add what is pending to the run's table (inside the caller's transaction)."""
        db.executemany(
            "INSERT INTO generative_costs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hour, agent) "
            "DO UPDATE SET requests = requests + excluded.requests, tokens_in = tokens_in + "
            "excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out, seconds = "
            "seconds + excluded.seconds",
            [(hour, agent, u.requests, u.tokens_in, u.tokens_out, u.seconds)
             for (hour, agent), u in sorted(self.pending.items())])
        self.pending.clear()


def read_costs(db: sqlite3.Connection) -> list[tuple[str, str, Usage]]:
    """Every saved (game hour, agent, usage), by hour then agent."""
    return [(hour, agent, Usage(*numbers)) for hour, agent, *numbers in db.execute(
        "SELECT hour, agent, requests, tokens_in, tokens_out, seconds FROM generative_costs "
        "ORDER BY hour, agent")]


def cost_report(rows: Iterable[tuple[str, str, Usage]], agents: Iterable[str]) -> dict:
    """Totals per agent, per game hour and overall, with requests and seconds per
    agent-hour (an hour of game time of one agent) to set beside other runs'."""
    names = sorted(agents)
    per_agent = {name: Usage() for name in names}
    per_hour: dict[str, Usage] = {}
    total = Usage()
    for hour, agent, usage in rows:
        per_agent.setdefault(agent, Usage()).add(usage)
        per_hour.setdefault(hour, Usage()).add(usage)
        total.add(usage)
    agent_hours = len(per_hour) * len(names)
    return {
        "per_agent": [{"agent": name, **u.as_dict()} for name, u in per_agent.items()],
        "per_hour": [{"hour": hour, **u.as_dict(),
                      "requests_per_agent": round(u.requests / len(names), 2) if names else 0}
                     for hour, u in sorted(per_hour.items())],
        "total": total.as_dict(),
        "agent_hours": agent_hours,
        "requests_per_agent_hour": round(total.requests / agent_hours, 2) if agent_hours else 0,
        "seconds_per_agent_hour": round(total.seconds / agent_hours, 4) if agent_hours else 0,
    }
