"""Small helpers the benchmarks share: percentiles, a temporary stack, memory of a process tree."""
from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.stack import Stack, default_config, running_stack


def percentile(values: list[float], fraction: float) -> float:
    """Return the value below which ``fraction`` of ``values`` fall (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def summary_ms(values: list[float]) -> str:
    """Return 'median / p90 / p99 ms' for a list of durations in seconds."""
    ms = [v * 1000 for v in values]
    return (
        f"median {statistics.median(ms):7.1f} ms   p90 {percentile(ms, 0.90):7.1f} ms   "
        f"p99 {percentile(ms, 0.99):7.1f} ms   (n={len(ms)})"
    )


@contextmanager
def temporary_stack() -> Iterator[Stack]:
    """Start the two bots and the chatroom on free ports in a throw-away folder."""
    # A benchmark sends far more than a person would; the rate limits would measure themselves.
    os.environ.setdefault("CHATROOM_RATE_PER_CONVERSATION", "0")
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as root:
        with running_stack(default_config(), Path(root)) as stack:
            yield stack


def descendants(pid: int) -> list[int]:
    """Return ``pid`` and every process below it, read from /proc."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        children.setdefault(int(fields["PPid"]), []).append(int(fields["Pid"]))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def tree_rss_mib(pid: int) -> float:
    """Return the resident memory of a process tree in MiB."""
    total_kib = 0
    for member in descendants(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024
