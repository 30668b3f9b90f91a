"""``python -m benchmarks [NAME...] [--quick]``: run benchmarks, one JSON line each.

Each line carries the machine it ran on, because a figure without its machine (and
without a baseline measured alongside it) cannot be compared with anything.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time

# name -> module in this package; each module has ``run(quick: bool) -> dict`` returning
# "figures", "baseline" and "ratio". Descriptions are the modules' first docstring lines.
BENCHMARKS = {
    "replay_throughput": "benchmarks.replay_throughput",
    "recording": "benchmarks.recording",
    "openai_overhead": "benchmarks.openai_overhead",
    "think_loop": "benchmarks.think_loop",
    "incremental_bleu": "benchmarks.incremental_bleu",
    "explorer": "benchmarks.explorer",
    "memory_fork": "benchmarks.memory_fork",
    "memory_retrieval": "benchmarks.memory_retrieval",
    "batched_rollouts": "benchmarks.batched_rollouts",
    "thread_budget": "benchmarks.thread_budget",
    "generative_concurrency": "benchmarks.generative_concurrency",
    "demo_stages": "benchmarks.demo_stages",
    "frozen_trunk": "benchmarks.frozen_trunk",
}


def describe(name: str) -> str:
    """The first line of a benchmark module's docstring."""
    module = importlib.import_module(BENCHMARKS[name])
    return (module.__doc__ or "").strip().splitlines()[0]


def processor_name() -> str:
    """The CPU model; ``platform.processor()`` is often empty on Linux."""
    name = platform.processor()
    if name and name not in ("x86_64", "aarch64", "arm64"):
        return name
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name or platform.machine()


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "processor": processor_name(),
    }


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    listing = "\n".join(f"  {name:<20} {describe(name)}" for name in BENCHMARKS)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run stepwise benchmarks; each prints one JSON line with our figures, "
                    "a baseline measured in the same run, and their ratio.",
        epilog=f"benchmarks:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions, for a smoke test (figures are noisier)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    unknown = [name for name in arguments.names if name not in BENCHMARKS]
    if unknown:
        print(f"benchmarks: unknown benchmark {', '.join(unknown)} "
              f"(known: {', '.join(BENCHMARKS)})", file=sys.stderr)
        return 2
    about_machine = machine()
    failed = []
    for name in arguments.names or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name])
        start = time.perf_counter()
        try:
            result = module.run(quick=arguments.quick)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 -- one benchmark, not the run
            failed.append(name)
            print(f"benchmarks: {name} failed: {exc}", file=sys.stderr)
            continue
        line = {
            "name": name,
            "figures": result["figures"],
            "baseline": result["baseline"],
            "ratio": result["ratio"],
            "machine": about_machine,
            "quick": arguments.quick,
            "seconds": round(time.perf_counter() - start, 2),
        }
        print(json.dumps(line), flush=True)
    if failed:
        print(f"benchmarks: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
