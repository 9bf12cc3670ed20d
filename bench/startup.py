"""Start-up time of `make run` to "ready", and the stack's memory after the first turn.

Run: .venv/bin/python -m bench.startup [--runs 3] [--scaled]
Times the `make run` command itself (or `make run-scaled`) on an installed,
trained clone: make's checks, the training check, then everything the launcher
starts (both bots, their action servers, the desk, the chatroom), on free ports
with a state folder of its own. Fails if a bot would be trained first, since
that is not what is being measured.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.measure import tree_rss_mib
from handoff.config import REPO_ROOT
from tests.stack import default_config, free_port, running_stack


def full_config() -> dict:
    """Return the bots' config plus a human desk, as in handoff_config.yml."""
    config = default_config()
    desk_port = free_port(also_free_at=18)  # Parlant's tool port sits 18 above
    config["handoff_hosts"]["human"] = {
        "title": "Support team", "url": f"http://localhost:{desk_port}", "kind": "parlant",
    }
    return config


def check_trained() -> None:
    """Stop unless every bot's model is current: training is not start-up."""
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "python"), "scripts/train-bots", "--dry-run"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )
    if result.stdout.strip():
        raise SystemExit(f"train first (make train):\n{result.stdout}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="starts to time (default 3)")
    parser.add_argument("--scaled", action="store_true", help="time `make run-scaled` instead")
    args = parser.parse_args()
    check_trained()
    target = "run-scaled" if args.scaled else "run"
    times, peaks = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="handoff-bench-") as root:
            started = time.perf_counter()
            launcher = ["make", "--no-print-directory", "-s", target]
            with running_stack(full_config(), Path(root), launcher=launcher, scaled=args.scaled) as stack:
                times.append(time.perf_counter() - started)
                person = stack.person()
                person.start()
                person.say("hi")
                peaks.append(tree_rss_mib(stack.pid))
        print(f"run {run + 1}: ready after {times[-1]:.1f} s, stack memory {peaks[-1]:.0f} MiB", flush=True)
    print(
        f"`make {target}` to ready: median {statistics.median(times):.1f} s "
        f"(min {min(times):.1f}, max {max(times):.1f}, {args.runs} runs)"
    )
    print(f"stack memory (RSS of every process, after first turn): max {max(peaks):.0f} MiB")


if __name__ == "__main__":
    main()
