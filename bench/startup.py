"""Start-up time of the whole stack to "ready", and its memory after the first turn.

Run: .venv/bin/python -m bench.startup [--runs 3]
The stack is what `make run` starts (both bots, their action servers, the desk,
the chatroom), on free ports. Assumes `make install train` has run.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.measure import tree_rss_mib
from tests.stack import default_config, free_port, running_stack


def full_config() -> dict:
    """Return the bots' config plus a human desk, as in handoff_config.yml."""
    config = default_config()
    desk_port = free_port(also_free_at=18)  # Parlant's tool port sits 18 above
    config["handoff_hosts"]["human"] = {
        "title": "Support team", "url": f"http://localhost:{desk_port}", "kind": "parlant",
    }
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="starts to time (default 3)")
    args = parser.parse_args()
    times, peaks = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="handoff-bench-") as root:
            started = time.perf_counter()
            with running_stack(full_config(), Path(root)) as stack:
                times.append(time.perf_counter() - started)
                person = stack.person()
                person.start()
                person.say("hi")
                peak = 0.0
                for _ in range(10):
                    peak = max(peak, tree_rss_mib(stack.pid))
                    time.sleep(0.2)
                peaks.append(peak)
        print(f"run {run + 1}: ready after {times[-1]:.1f} s, stack memory {peaks[-1]:.0f} MiB")
    print(
        f"start-up to ready: median {statistics.median(times):.1f} s "
        f"(min {min(times):.1f}, max {max(times):.1f})"
    )
    print(f"stack memory (RSS of every process, after first turn): max {max(peaks):.0f} MiB")


if __name__ == "__main__":
    main()
