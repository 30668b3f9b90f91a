"""Asynchronous simulations: a slot whose rollout ends takes the next simulation while a
slower one is still out (no round barrier), the tree is the same in any completion order,
and a run killed with simulations in flight resumes to the bytes of an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from stepwise.search import explorer
from stepwise.search.events import EventLog
from stepwise.search.explorer import ExploreOptions, Explorer
from stepwise.search.run import explore_tasks
from tests.conftest import REPO
from tests.test_explorer import ChainEnv
from tests.test_parallel_scoring import InlineExecutor  # each slot on the calling thread

OPTIONS = {"simulations": 60, "parallel": 4, "seed": 5, "reward": "page"}
HOLD_SECONDS = 20  # a deadlock guard only: the held rollout is released by the others


class OutOfOrderChain(ChainEnv):
    """Five steps of three actions; each step takes an unseeded moment (0-3 ms), so rollouts
    end in no fixed order. ``hold_first``: the first rollout to finish waits until two other
    rollouts have. ``stall_after``: after that many rollouts, every rollout stops for good
    (a process to be killed with simulations in flight), touching ``stalled`` first."""

    task_id = "out-of-order"
    best = (2, 0, 1, 1, 2)

    def __init__(self, hold_first: bool = False, stall_after: int | None = None,
                 stalled: str | None = None) -> None:
        self.hold_first, self.stall_after, self.stalled = hold_first, stall_after, stalled
        self.finished = 0
        self.steps = 0
        self._changed = threading.Condition()

    def step(self, state, action):
        self.steps += 1
        time.sleep(random.random() * 0.003)  # unseeded on purpose: the order must not matter
        return super().step(state, action)

    def score(self, state):
        with self._changed:
            self.finished += 1
            first = self.finished == 1
            self._changed.notify_all()
            if self.stall_after is not None and self.finished > self.stall_after:
                Path(self.stalled).touch()
                self._changed.wait_for(lambda: False)  # until the process is killed
            if first and self.hold_first and not self._changed.wait_for(
                    lambda: self.finished >= 3, timeout=HOLD_SECONDS):
                raise AssertionError("no other rollout ended while the first was out")
        return super().score(state)


def search(env: OutOfOrderChain, log: Path | None = None, **options: Any) -> str:
    tree = Explorer(env, ExploreOptions(**{**OPTIONS, **options}), EventLog(log),
                    env_name="chain").run()
    return tree.to_json()


def test_a_slot_goes_on_while_a_slower_rollout_is_out_and_the_tree_is_the_same(monkeypatch):
    # Two slots; the first rollout is held until two others end: with a round barrier the
    # other slot would wait for it (and the hold would time out).
    held = search(OutOfOrderChain(hold_first=True), parallel=2)
    again = search(OutOfOrderChain(), parallel=2)
    monkeypatch.setattr(explorer, "ThreadPoolExecutor", InlineExecutor)
    inline = search(OutOfOrderChain(), parallel=2)
    assert held == again == inline
    tree = json.loads(held)
    assert tree["nodes"][0]["visits"] == OPTIONS["simulations"]
    first = [n["action"] for n in tree["nodes"] if n["parent"] == 0]
    assert first == [0, 1, 2]


KILLED_RUN = """
import sys
from tests.test_explorer_async import OutOfOrderChain, search
search(OutOfOrderChain(hold_first=True, stall_after=int(sys.argv[2]), stalled=sys.argv[3]),
       log=__import__("pathlib").Path(sys.argv[1]))
"""


def test_a_run_killed_with_simulations_in_flight_resumes_to_the_same_bytes(tmp_path):
    straight_log = tmp_path / "straight.jsonl"
    straight = search(OutOfOrderChain(), log=straight_log)
    log, stalled = tmp_path / "killed.jsonl", tmp_path / "stalled"
    killed = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(log), "23", str(stalled)],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not stalled.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    exited = killed.poll()
    if exited is None:
        os.kill(killed.pid, signal.SIGKILL)  # rollouts out, some ended but not yet logged
    killed.wait()
    assert exited is None and stalled.exists(), killed.stderr.read().decode()
    killed.stderr.close()
    logged = len(log.read_bytes().splitlines())
    assert 0 < logged <= 23 < OPTIONS["simulations"]
    resumed_env = OutOfOrderChain()
    assert search(resumed_env, log=log) == straight
    assert log.read_bytes() == straight_log.read_bytes()  # each simulation logged once, alike
    replayed = OutOfOrderChain()  # a replay of a finished log makes no model step
    done = Explorer(replayed, ExploreOptions(**OPTIONS), EventLog(log)).replay(
        EventLog(log).read())
    assert done == OPTIONS["simulations"] and replayed.steps == 0


class CountedChain(OutOfOrderChain):
    """Each step sleeps a moment and counts the steps in flight, this task's and all tasks'."""

    def __init__(self, task_id: str, running: dict[str, int], lock: threading.Lock) -> None:
        super().__init__()
        self.task_id, self.running, self.counted = task_id, running, lock
        self.most = 0  # this task's steps in flight at once, at most

    def step(self, state, action):
        with self.counted:
            self.running[self.task_id] = self.running.get(self.task_id, 0) + 1
            self.running["all"] = self.running.get("all", 0) + 1
            self.most = max(self.most, self.running[self.task_id])
            self.running["most"] = max(self.running.get("most", 0), self.running["all"])
        try:
            time.sleep(0.004)
            return super().step(state, action)
        finally:
            with self.counted:
                self.running[self.task_id] -= 1
                self.running["all"] -= 1


def test_tasks_share_their_slots_and_each_tree_is_the_one_it_has_alone(tmp_path):
    # Two tasks at --parallel 2 share 4 slots. The small one (a chain of one step) is soon
    # done; the large one then runs the three simulations its window holds at once, and no
    # more than 4 run in all. Its tree is the one it gets searched alone on 2 slots.
    running: dict[str, int] = {}
    lock = threading.Lock()
    envs = {"small": CountedChain("small", running, lock),
            "large": CountedChain("large", running, lock)}
    envs["small"].best = (1,)
    options = ExploreOptions(**{**OPTIONS, "simulations": 90, "parallel": 2})
    explore_tasks(["small", "large"], envs.__getitem__, options, tmp_path, env_name="chain",
                  workers=2)
    assert envs["large"].most == 3 and running["most"] <= 4
    alone = Explorer(CountedChain("large", {}, threading.Lock()), options, env_name="chain")
    shared = json.loads((tmp_path / "trees" / "large.json").read_text(encoding="utf-8"))
    assert shared["nodes"] == json.loads(alone.run().to_json())["nodes"]
