"""What the benchmarks share: statistics, stacks of this tree or of another commit, runs side by side.

Every bench measures a set of named figures per run. ``compare`` runs that
measurement ``--runs`` times on this tree and, with ``--ref <git ref>``, on that
commit too, alternating between them run by run so the machine's noise hits
both alike, then prints each figure's median and spread (min-max) and the ratio
this tree / ref. The ref is checked out in a temporary git worktree with its own
virtual environments (its own ``make install``, fed from this repo's uv and pip
caches, so it takes a minute or two) and its bots' models (copied from this tree
when the ref trains them from the same data, else trained there). Each stack is
started by its own tree's ``tests/stack.py``, so a commit runs the way its own
tests run it. ``--scaled`` adds this tree's scaled stack (PostgreSQL, Redis,
several chatroom workers and bot replicas: ``running_stack(scaled=True)``) as
one more column, so embedded and scaled are compared in one run too.
"""
from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from handoff.config import REPO_ROOT
from tests.stack import Stack, default_config, running_stack

THIS_TREE = "this tree"
FOREIGN_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "RASA_BIN", "HANDOFF_CONFIG", "HANDOFF_STATE_DIR")
TRAINING_INPUTS = ("config.yml", "domain.yml", "data")
# A benchmark sends far more than a person would; the rate limits would measure themselves.
BENCH_ENV = {"CHATROOM_RATE_PER_CONVERSATION": "0", "CHATROOM_RATE_PER_CLIENT": "0"}
# Runs inside the measured tree, with that tree's Python and its own tests.stack.
# It prints where the stack listens, then holds it until its standard input
# closes, which also happens if the bench dies.
SERVE = """
import json, sys, tempfile
from pathlib import Path
from tests.stack import running_stack
config, options = json.loads(sys.argv[1]), json.loads(sys.argv[2])
with tempfile.TemporaryDirectory(prefix="handoff-bench-") as root:
    with running_stack(config, Path(root), **options) as stack:
        print(json.dumps({"chatroom_url": stack.chatroom_url, "hosts": stack.hosts,
                          "config_path": str(stack.config_path), "state_dir": str(stack.state_dir),
                          "log_path": str(stack.log_path), "pid": stack.pid}), flush=True)
        sys.stdin.read()
"""

Figures = dict[str, float]
# Measures one run on a running stack; it is given the run's number (1, 2, ...).
Measure = Callable[[Stack, int], Figures]


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


def latency_figures(prefix: str, seconds: list[float]) -> Figures:
    """Return '<prefix> median/p90/p99 ms' of a list of durations in seconds."""
    if not seconds:
        return {f"{prefix} median ms": float("nan"), f"{prefix} p90 ms": float("nan"),
                f"{prefix} p99 ms": float("nan")}
    ms = [value * 1000 for value in seconds]
    return {
        f"{prefix} median ms": statistics.median(ms),
        f"{prefix} p90 ms": percentile(ms, 0.90),
        f"{prefix} p99 ms": percentile(ms, 0.99),
    }


def number(value: float) -> str:
    """Return a figure with as many decimals as its size calls for."""
    if value != value:
        return "n/a"
    if value == int(value):
        return f"{int(value):,}"
    size = abs(value)
    return f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"


def spread(values: list[float]) -> str:
    """Return 'median (min–max)' of one figure's runs, or the value alone for a single run."""
    known = [value for value in values if value == value]
    if not known:
        return "n/a"
    middle = number(statistics.median(known))
    if min(known) == max(known):
        return middle
    return f"{middle} ({number(min(known))}–{number(max(known))})"


def ratio_spread(mine: list[float], ref: list[float]) -> str:
    """Return the ratio of the medians, with the spread of the run-by-run ratios."""
    # Counts that are 0 on the ref (nothing lost, say) have no ratio.
    pairs = [(a, b) for a, b in zip(mine, ref) if a == a and b == b and b != 0]
    if not pairs:
        return "–"
    overall = statistics.median(a for a, _ in pairs) / statistics.median(b for _, b in pairs)
    each = [a / b for a, b in pairs]
    if len(each) == 1:
        return f"{overall:.2f}"
    return f"{overall:.2f} ({min(each):.2f}–{max(each):.2f})"


def table(results: dict[str, list[Figures]]) -> str:
    """Return a Markdown table: one row per figure, median (min–max) per tree, and the ratios to the first."""
    first, *others = list(results)
    figures = list(dict.fromkeys(key for runs in results.values() for run in runs for key in run))
    header = ["figure", first, *others] + [f"{first} / {other}" for other in others]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for figure in figures:
        columns = {name: [run.get(figure, float("nan")) for run in runs] for name, runs in results.items()}
        cells = [figure] + [spread(column) for column in columns.values()]
        cells += [ratio_spread(columns[first], columns[other]) for other in others]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser, runs: int = 3) -> None:
    """Add the options every bench has: --runs and --ref."""
    parser.add_argument("--runs", type=int, default=runs, help=f"runs per tree (default {runs})")
    parser.add_argument(
        "--ref", help="also measure this git ref (e.g. main or 9d870bd) in the same run, alternating"
    )
    parser.add_argument(
        "--scaled", action="store_true",
        help="also measure this tree's scaled stack (PostgreSQL, Redis, several workers and replicas)",
    )


@dataclass(frozen=True)
class Tree:
    """A checkout of the code to measure, with its own virtual environments."""

    name: str
    root: Path
    # Passed to that tree's tests.stack.running_stack, e.g. {"scaled": True}.
    options: tuple[tuple[str, object], ...] = ()

    @property
    def python(self) -> Path:
        return self.root / ".venv" / "bin" / "python"


def cache_dir(variable: str, default: str) -> str:
    """Return the cache this repo's make uses (from the environment, else the repo's own)."""
    return os.environ.get(variable) or str(REPO_ROOT / ".cache" / default)


def same_training_inputs(ref: str, bot: str) -> bool:
    """Tell whether the bot's config, domain and data at ``ref`` equal this tree's."""
    paths = [f"bots/{bot}/{name}" for name in TRAINING_INPUTS]
    diff = subprocess.run(["git", "diff", "--quiet", ref, "--", *paths], cwd=REPO_ROOT, check=False)
    return diff.returncode == 0


def make(tree: Path, *targets: str) -> None:
    """Run the tree's own make targets with this repo's download caches; its output goes to stderr."""
    command = ["make", "--silent", f"UV_CACHE_DIR={cache_dir('UV_CACHE_DIR', 'uv')}",
               f"PIP_CACHE_DIR={cache_dir('PIP_CACHE_DIR', 'pip')}", *targets]
    # Under `make bench`, the outer make's flags (REF=... included) are not the tree's business.
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(command, cwd=tree, env=env, check=False, stdout=sys.stderr)
    if done.returncode:
        raise SystemExit(f"`{' '.join(command)}` failed in {tree} (exit code {done.returncode}); "
                         "its output is above")


@contextmanager
def checked_out(ref: str) -> Iterator[Tree]:
    """Yield ``ref`` in a temporary git worktree, installed and trained; remove it afterwards."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="handoff-bench-ref-") as scratch:
        root = Path(scratch) / f"ref-{commit[:10]}"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(root), commit],
                       cwd=REPO_ROOT, check=True)
        try:
            started = time.perf_counter()
            print(f"installing {ref} ({commit[:10]}) in {root} ...", file=sys.stderr)
            make(root, "install")
            untrained = []
            for bot_dir in sorted(path for path in (root / "bots").iterdir() if path.is_dir()):
                mine = REPO_ROOT / "bots" / bot_dir.name / "models"
                if same_training_inputs(commit, bot_dir.name) and any(mine.glob("*.tar.gz")):
                    shutil.copytree(mine, bot_dir / "models", dirs_exist_ok=True)
                else:
                    untrained.append(bot_dir.name)
            if untrained:
                print(f"training {', '.join(untrained)} at {ref} (its data differ) ...", file=sys.stderr)
                make(root, "train")
            print(f"{ref} ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            yield Tree(ref, root)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(root)], cwd=REPO_ROOT, check=False)
            subprocess.run(["git", "worktree", "prune"], cwd=REPO_ROOT, check=False)


@contextmanager
def trees(ref: str | None, scaled: bool = False) -> Iterator[list[Tree]]:
    """Yield this tree, ``ref`` checked out beside it when given, and this tree scaled when asked."""
    if scaled and "scaled" not in inspect.signature(running_stack).parameters:
        raise SystemExit("--scaled: tests/stack.py's running_stack here cannot start the scaled stack "
                         "(it takes no scaled= option); measure a tree that can")
    with ExitStack() as opened:
        found = [Tree(THIS_TREE, REPO_ROOT)]
        if ref:
            found.append(opened.enter_context(checked_out(ref)))
        if scaled:
            found.append(Tree("scaled", REPO_ROOT, (("scaled", True),)))
        yield found


@contextmanager
def serving(tree: Tree, config: dict | None = None, env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Start ``tree``'s stack with its own code and virtual environments; stop it on exit."""
    config = config or default_config()
    # Nothing of this tree's environment may point the other tree's processes back here.
    child_env = {key: value for key, value in os.environ.items() if key not in FOREIGN_ENV}
    child_env.update({**BENCH_ENV, **(env or {})})
    process = subprocess.Popen(
        [str(tree.python), "-c", SERVE, json.dumps(config), json.dumps(dict(tree.options))],
        cwd=tree.root, env=child_env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline()
        if not line:
            code = process.wait()
            raise SystemExit(f"the stack of {tree.name} ({tree.root}) did not start (exit code {code})")
        where = json.loads(line)
        yield Stack(
            config_path=Path(where["config_path"]), state_dir=Path(where["state_dir"]),
            chatroom_url=where["chatroom_url"], hosts=where["hosts"], scripted=None,
            log_path=Path(where["log_path"]), pid=where["pid"],
        )
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def show_run(name: str, run: int, figures: Figures) -> None:
    """Print one run's figures on one line as soon as they are known."""
    shown = "   ".join(f"{key} {number(value)}" for key, value in figures.items())
    print(f"run {run} [{name}]: {shown}", flush=True)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Keep this process's garbage collector from stopping the clocks of the turns in flight.

    A full collection stops every thread of the bench at once, and that time
    would count as the stack's (one of 101 ms was seen in a bench.streams run).
    The bench's garbage is collected between runs instead.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def compare(
    args: argparse.Namespace, measure: Measure, *, config: Callable[[], dict] | None = None,
    env: dict[str, str] | None = None, fresh_stack: bool = False,
    warm_up: Callable[[Stack], object] | None = None,
) -> dict[str, list[Figures]]:
    """Measure ``args.runs`` times per tree, alternating trees; print each run and the summary table.

    With ``fresh_stack`` every run starts its own stack (for benches that leave
    state behind); otherwise each tree's stack serves all its runs. ``warm_up``
    is given each new stack first, so no run pays for first calls and lazy loads.
    """
    @contextmanager
    def started(tree: Tree) -> Iterator[Stack]:
        with serving(tree, config() if config else None, env) as stack:
            if warm_up is not None:
                warm_up(stack)
            yield stack

    results: dict[str, list[Figures]] = {}
    with trees(args.ref, args.scaled) as found, ExitStack() as running:
        results = {tree.name: [] for tree in found}
        stacks = {}
        if not fresh_stack:
            for tree in found:
                stacks[tree.name] = running.enter_context(started(tree))
        for run in range(1, args.runs + 1):
            # Alternate who goes first, so neither tree always meets a warmer or busier machine.
            for tree in found if run % 2 else list(reversed(found)):
                if fresh_stack:
                    with started(tree) as stack, collector_paused():
                        figures = measure(stack, run)
                else:
                    with collector_paused():
                        figures = measure(stacks[tree.name], run)
                results[tree.name].append(figures)
                show_run(tree.name, run, figures)
    print(f"\nmedian (min–max) of {args.runs} run(s); load average now {os.getloadavg()[0]:.1f}")
    print(table(results))
    return results


@contextmanager
def temporary_stack() -> Iterator[Stack]:
    """Start the two bots and the chatroom of this tree on free ports in a throw-away folder."""
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)
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


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def processes_running(root_pid: int, module: str) -> list[int]:
    """Return the processes under ``root_pid`` running ``module``, and their children.

    Both ``python -m <module>`` and gevent's runner (``-m gevent.monkey --module <module>``) count.
    """
    found: list[int] = []
    for pid in descendants(root_pid):
        arguments = command_line(pid)
        pairs = zip(arguments, arguments[1:])
        if any(a in ("-m", "--module") and b == module for a, b in pairs) and pid not in found:
            found.extend(member for member in descendants(pid) if member not in found)
    return found


def rss_mib(pids: list[int]) -> float:
    """Return the resident memory of these processes in MiB."""
    total_kib = 0
    for member in pids:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def cpu_seconds(pids: list[int]) -> float:
    """Return the CPU time (user + system) these processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in pids:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def tree_rss_mib(pid: int) -> float:
    """Return the resident memory of a process tree in MiB."""
    return rss_mib(descendants(pid))
