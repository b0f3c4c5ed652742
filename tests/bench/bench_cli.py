"""How long ``exalate-bot --help`` takes, as a whole process, and the memory it peaks at.

    python -m tests.bench.bench_cli [--runs 20] [--checkout PATH]

Runs ``python -m bot --help`` (the console script's work, without the wrapper) ``--runs``
times, one after another, in this checkout or in ``--checkout`` (another checkout of the
project, e.g. an older commit in a ``git worktree``, for a side-by-side baseline: its
own code, this interpreter). Prints the median, the 90th percentile and the fastest wall
time in ms, and the median peak RSS in MB. Where the time goes: ``python -X importtime
-m bot --help``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one_run(checkout: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``--help``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bot", "--help"],
        cwd=checkout,
        env=os.environ | {"PYTHONPATH": str(checkout)},
        stdout=subprocess.DEVNULL,
        check=True,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss of children is the largest child so far: a run's own peak shows when it
    # is the largest; the median over runs is what one run peaks at.
    return elapsed, max(after.ru_maxrss, before.ru_maxrss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[2])
    chosen = parser.parse_args()
    runs = [one_run(chosen.checkout) for _ in range(chosen.runs)]
    times = sorted(wall * 1000 for wall, _ in runs)
    p90 = times[int(0.9 * (len(times) - 1))]
    rss = statistics.median(peak for _, peak in runs)
    print(
        f"{chosen.checkout}: --help over {len(times)} runs: median {statistics.median(times):.0f} "
        f"ms, p90 {p90:.0f} ms, fastest {times[0]:.0f} ms; peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
