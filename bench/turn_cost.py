"""What a turn costs as one conversation grows: the 10th, 100th and 500th turn.

Run: .venv/bin/python -m bench.turn_cost [--bot helpdesk] [--runs 3] [--ref main]
Starts the stack on free ports and holds two long conversations with the bot,
one straight to its REST webhook and one through the chatroom, sending the bot's
repeating ten-turn script (bench/talk.py) and advancing both a turn at a time.
The cost at turn N is the mean of turns N to N+9 (one whole cycle of the script).
Each run starts fresh conversations; the table shows the median of the runs and
their spread. With ``--ref`` a second stack runs that commit's code (extracted
with git archive, sharing this tree's virtual environments; its bots are trained
if their data differ; its own virtual environments are built with ``make install``
if its pyproject.toml differs) and its conversations advance in step with this
tree's, so the machine's noise hits both alike and the ratio between them is fair.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.talk import SCRIPTS, chatroom_sender, direct_sender, script_turn
from handoff.config import REPO_ROOT
from tests.stack import Stack

MARKS = (10, 100, 500)
PATHS = ("direct", "chatroom")
TRAINING_INPUTS = ("config.yml", "domain.yml", "data")
# Runs inside the measured tree (its own tests.stack), so a commit is started the
# way its own tests start it. It prints where the stack listens and stops it when
# its standard input closes - also while the stack is still starting, and also
# when this process dies.
SERVE = """
import json, os, signal, sys, tempfile, threading
from pathlib import Path
from tests.stack import default_config, running_stack

def interrupt(*_):
    raise KeyboardInterrupt

def stop_when_input_closes():
    sys.stdin.read()
    os.kill(os.getpid(), signal.SIGTERM)

signal.signal(signal.SIGTERM, interrupt)
threading.Thread(target=stop_when_input_closes, daemon=True).start()
try:
    with tempfile.TemporaryDirectory(prefix="turn-cost-") as root:
        with running_stack(default_config(), Path(root)) as stack:
            print(json.dumps({"chatroom_url": stack.chatroom_url, "hosts": stack.hosts,
                              "state_dir": str(stack.state_dir), "pid": stack.pid}), flush=True)
            threading.Event().wait()
except KeyboardInterrupt:
    pass
"""


@dataclass
class Series:
    """Turn times of one tree and one path, one list per run."""

    runs: list[list[float]] = field(default_factory=list)

    def at(self, mark: int, width: int) -> list[float]:
        """Return, per run, the mean ms of turns mark .. mark+width-1 (1-based)."""
        return [statistics.mean(times[mark - 1:mark - 1 + width]) * 1000 for times in self.runs]


def same_training_inputs(ref: str, bot: str) -> bool:
    """Tell whether the bot's config, domain and data at ``ref`` equal this tree's."""
    paths = [f"bots/{bot}/{name}" for name in TRAINING_INPUTS]
    diff = subprocess.run(["git", "diff", "--quiet", ref, "--", *paths], cwd=REPO_ROOT, check=False)
    return diff.returncode == 0


def install(tree: Path, ref: str) -> None:
    """Give ``tree`` virtual environments: this tree's if the dependencies are the same."""
    if (tree / "pyproject.toml").read_bytes() == (REPO_ROOT / "pyproject.toml").read_bytes():
        for venv in (".venv", ".venv-rasa"):
            (tree / venv).symlink_to(REPO_ROOT / venv)
        return
    print(f"installing {ref}'s dependencies (its pyproject.toml differs) ...", file=sys.stderr)
    caches = {name: os.environ.get(name) or str(REPO_ROOT / ".cache" / folder)
              for name, folder in (("UV_CACHE_DIR", "uv"), ("PIP_CACHE_DIR", "pip"))}
    subprocess.run(["make", *(f"{name}={path}" for name, path in caches.items()), "install"],
                   cwd=tree, check=True, stdout=subprocess.DEVNULL)


@contextmanager
def checked_out(ref: str) -> Iterator[Path]:
    """Yield a temporary copy of ``ref`` that can run: installed, bots trained."""
    with tempfile.TemporaryDirectory(prefix="turn-cost-ref-") as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        archive = Path(scratch) / "tree.tar"
        subprocess.run(["git", "archive", "--output", str(archive), ref], cwd=REPO_ROOT, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        install(tree, ref)
        for bot_dir in sorted((tree / "bots").iterdir()):
            mine = REPO_ROOT / "bots" / bot_dir.name / "models"
            if same_training_inputs(ref, bot_dir.name) and any(mine.glob("*.tar.gz")):
                shutil.copytree(mine, bot_dir / "models")
                continue
            print(f"training {bot_dir.name} at {ref} (its data or config differ) ...", file=sys.stderr)
            subprocess.run(
                [str(tree / ".venv-rasa" / "bin" / "rasa"), "train", "--out", "models",
                 "--fixed-model-name", bot_dir.name],
                cwd=bot_dir, check=True, stdout=subprocess.DEVNULL,
            )
        yield tree


@contextmanager
def serving(tree: Path) -> Iterator[Stack]:
    """Start the stack of ``tree`` with that tree's own code; stop it on exit."""
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        # A benchmark sends far more than a person would; the rate limits would measure themselves.
        "CHATROOM_RATE_PER_CONVERSATION": "0",
        "CHATROOM_RATE_PER_CLIENT": "0",
    }
    process = subprocess.Popen(
        [str(tree / ".venv" / "bin" / "python"), "-c", SERVE], cwd=tree, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"the stack of {tree} did not start (exit code {process.wait()})")
        where = json.loads(line)
        yield Stack(
            config_path=Path(where["state_dir"]).parent / "handoff_config.yml",
            state_dir=Path(where["state_dir"]), chatroom_url=where["chatroom_url"],
            hosts=where["hosts"], scripted=None, log_path=Path(where["state_dir"]).parent / "stack.log",
            pid=where["pid"],
        )
    finally:
        process.stdin.close()
        process.wait(timeout=120)


def converse(stacks: dict[str, Stack], bot: str, turns: int,
             paths: tuple[str, ...]) -> dict[tuple[str, str], list[float]]:
    """Hold one conversation per tree and path, advancing all of them a turn at a time."""
    senders: dict[tuple[str, str], Callable[[str], float]] = {}
    for name, stack in stacks.items():
        senders[name, "direct"] = direct_sender(stack, bot)
        if "chatroom" in paths:
            senders[name, "chatroom"] = chatroom_sender(stack, bot)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in senders}
    for turn in range(turns):
        text = script_turn(bot, turn)
        for key, send in senders.items():
            times[key].append(send(text))
    return times


def spread(values: list[float], digits: int = 1) -> str:
    """Return 'median (min-max)'."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def ratios(numerators: list[float], denominators: list[float]) -> str:
    """Return the spread of the run-by-run ratios."""
    return spread([a / b for a, b in zip(numerators, denominators)], digits=2)


def report(series: dict[tuple[str, str], Series], names: list[str], paths: tuple[str, ...],
           marks: list[int], width: int) -> str:
    """Return the Markdown tables: ms per turn at each mark, then the ratios."""
    lines = [
        "| tree | path | " + " | ".join(f"turn {mark}, ms" for mark in marks)
        + f" | turn {marks[-1]} / turn {marks[0]} |",
        "| --- | --- | " + " | ".join("---" for _ in marks) + " | --- |",
    ]
    for name in names:
        for path in paths:
            runs = series[name, path]
            lines.append(
                f"| {name} | {path} | " + " | ".join(spread(runs.at(mark, width)) for mark in marks)
                + f" | {ratios(runs.at(marks[-1], width), runs.at(marks[0], width))} |"
            )
    if len(names) == 2:
        mine, ref = names
        lines += ["", "| path | " + " | ".join(f"turn {mark}: {mine} / {ref}" for mark in marks) + " |",
                  "| --- | " + " | ".join("---" for _ in marks) + " |"]
        for path in paths:
            mine_at, ref_at = series[mine, path].at, series[ref, path].at
            cells = [ratios(mine_at(mark, width), ref_at(mark, width)) for mark in marks]
            lines.append(f"| {path} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bot", default="helpdesk", choices=sorted(SCRIPTS),
                        help="the bot to talk to (default helpdesk); through the chatroom only if it is "
                             "the entry host")
    parser.add_argument("--runs", type=int, default=3, help="fresh conversations per path (default 3)")
    parser.add_argument("--ref", help="also measure this git ref (e.g. main), side by side")
    parser.add_argument("--marks", default=",".join(map(str, MARKS)),
                        help="turns to measure, comma-separated, first is the baseline (default 10,100,500)")
    args = parser.parse_args()
    marks = sorted(int(mark) for mark in args.marks.split(","))
    width = len(SCRIPTS[args.bot])
    turns = marks[-1] + width - 1
    names = ["this tree"] + ([args.ref] if args.ref else [])
    with ExitStack() as started:
        stacks = {"this tree": started.enter_context(serving(REPO_ROOT))}
        if args.ref:
            stacks[args.ref] = started.enter_context(serving(started.enter_context(checked_out(args.ref))))
        entry = stacks["this tree"].config().get("entry")
        paths = PATHS if args.bot == entry else ("direct",)
        series = {(name, path): Series() for name in names for path in paths}
        for run in range(args.runs):
            print(f"run {run + 1} of {args.runs}: {turns} turns per conversation ...", file=sys.stderr)
            for key, times in converse(stacks, args.bot, turns, paths).items():
                series[key].runs.append(times)
    print(f"{args.bot}: ms per turn, mean of turns N..N+{width - 1}; median of {args.runs} runs (min-max); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(report(series, names, paths, marks, width))


if __name__ == "__main__":
    main()
