"""Where one turn's CPU goes: each bot, its action server and the chatroom, per stage.

Run: .venv/bin/python -m bench.profile_turn [--turns 400] [--clients 2] [--length 10]
Starts the stack on free ports, attaches py-spy (`.venv/bin/uv pip install --python
.venv/bin/python py-spy`; attaching needs root or ptrace rights) to every bot,
action server and the chatroom, and sends each bot ``--turns`` scripted messages
(bench/talk.py) from ``--clients`` concurrent conversations of ``--length`` turns,
straight to its REST webhook (``--via chatroom`` sends the helpdesk's through the
chatroom instead). Prints a Markdown table: CPU per turn of each process (from
/proc) split by the share of py-spy samples in each stage. Shares stay meaningful
on a busy machine; the milliseconds do not.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import descendants, temporary_stack
from bench.talk import SCRIPTS, chatroom_sender, direct_sender, script_turn
from tests.stack import Stack
from tests.test_scaled import parent_pid
from tests.test_scaled_faults import LISTEN, socket_inodes, socket_owner

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WARM_UP_TURNS = 10

# A sample belongs to the first stage whose test matches one of its frames; the
# order puts the most specific stages first. A frame is "function (path:line)".
Frame = tuple[str, str]

NLU_COMPONENTS = {
    "whitespace_tokenizer.py": "WhitespaceTokenizer",
    "regex_featurizer.py": "RegexFeaturizer",
    "lexical_syntactic_featurizer.py": "LexicalSyntacticFeaturizer",
    "count_vectors_featurizer.py": "CountVectorsFeaturizer",
    "logistic_regression_classifier.py": "LogisticRegressionClassifier",
    "crf_entity_extractor.py": "CRFEntityExtractor",
    "entity_synonyms.py": "EntitySynonymMapper",
    "fallback_classifier.py": "FallbackClassifier",
    "regex_message_handler.py": "RegexMessageHandler",
}


def _function(frame: Frame) -> str:
    return frame[0].rsplit(".", 1)[-1]


def _has(stack: list[Frame], functions: Iterable[str] = (), path: str = "") -> bool:
    names = set(functions)
    return any(
        (not names or _function(frame) in names) and (not path or path in frame[1]) for frame in stack
    )


def rasa_stage(stack: list[Frame]) -> str:
    """Name the stage of a Rasa server's sample."""
    if _has(stack, ["_validate_action_result", "validate_action_result"]):
        return "action call: response validation (jsonschema)"
    if _has(stack, ["_action_call_format"]):
        return "action call: tracker and domain to JSON"
    if _has(stack, ["request"], "rasa/utils/endpoints.py"):
        return "action call: HTTP request (client side)"
    for store in ("rasa/core/tracker_store.py", "handoff/rasa_stores.py"):
        if _has(stack, ["retrieve", "_retrieve", "get_or_create_tracker", "retrieve_full_tracker"], store):
            return "tracker store: retrieve"
        if _has(stack, ["save", "_additional_events", "stream_events"], store):
            return "tracker store: save"
    if _has(stack, path="rasa/core/lock_store.py") or _has(stack, path="rasa/core/lock.py"):
        return "lock store"
    if _has(stack, path="rasa/core/policies/") or _has(stack, path="rasa/core/featurizers/"):
        return "policies (incl. tracker states)"
    for frame in stack:
        if "rasa/nlu/" in frame[1] or "rasa/core/featurizers/" in frame[1]:
            name = frame[1].rsplit("/", 1)[-1].split(":", 1)[0]
            if name in NLU_COMPONENTS:
                return f"NLU: {NLU_COMPONENTS[name]}"
    if _has(stack, ["parse_message", "_parse_message_with_graph"]):
        return "NLU: other (graph, message)"
    if _has(stack, ["copy", "travel_back_in_time", "from_events", "from_dict", "applied_events",
                    "replay_events", "init_copy"], "rasa/shared/core/trackers.py"):
        return "tracker copies and replays"
    if _has(stack, path="rasa/core/actions/"):
        return "Rasa's own actions (forms, slots, utterances)"
    if _has(stack, path="rasa/core/processor.py") or _has(stack, path="rasa/core/agent.py"):
        return "message handling (processor, other)"
    return "HTTP server, JSON, event loop, logging"


def actions_stage(stack: list[Frame]) -> str:
    """Name the stage of an action server's sample."""
    for frame in reversed(stack):
        path = frame[1]
        if (path.startswith("actions/") or "/actions/" in path) and "rasa" not in path:
            return f"action code: {path.split(':', 1)[0].rsplit('/', 2)[-1]}"
        if "handoff/actions.py" in path:
            return "action code: handoff/actions.py"
    if _has(stack, ["from_dict"], "rasa_sdk/interfaces.py"):
        return "Tracker.from_dict"
    if _has(stack, path="rasa_sdk/forms.py"):
        return "rasa_sdk forms (validation plumbing)"
    if _has(stack, path="rasa_sdk/executor.py"):
        return "rasa_sdk executor"
    if _has(stack, ["json", "loads", "load_json"]):
        return "request JSON parsing"
    return "HTTP server, JSON, event loop, logging"


def chatroom_stage(stack: list[Frame]) -> str:
    """Name the stage of the chatroom's sample."""
    if _has(stack, path="requests/") or _has(stack, path="urllib3/"):
        return "calls to hosts (HTTP client)"
    if _has(stack, path="sqlite3") or _has(stack, path="sqlalchemy/"):
        return "database"
    if _has(stack, path="chatroom/"):
        return "chatroom code"
    return "WSGI server, JSON, other"


@dataclass
class Target:
    """A process to sample and how to read its samples."""

    label: str
    pid: int
    stage: Callable[[list[Frame]], str]
    bot: str
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    turns: int = 0
    samples: Counter = field(default_factory=Counter)


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def open_files(pid: int) -> set[str]:
    try:
        return {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
    except OSError:
        return set()


def find_targets(stack: Stack, bots: list[str], via: str) -> list[Target]:
    """Return the bot, action server and chatroom processes of a running stack."""
    commands = {pid: command_line(pid) for pid in descendants(stack.pid)}

    targets = []
    for bot in bots:
        # Rasa servers are forked from one process that imported Rasa, so they share its
        # command line; each is told apart by the port it listens on.
        port = int(stack.hosts[bot].rsplit(":", 1)[1])
        targets.append(Target(f"{bot} (Rasa)", socket_owner(stack, port, LISTEN), rasa_stage, bot))
        targets.append(Target(f"{bot} action server", socket_owner(stack, port + 50, LISTEN),
                              actions_stage, bot))
    if via == "chatroom":
        # gunicorn's master and its worker both hold the listening socket; the worker serves.
        port = int(stack.chatroom_url.rsplit(":", 1)[1])
        listening = {f"socket:[{inode}]" for inode in socket_inodes(port, LISTEN)}
        holders = [pid for pid in commands if listening & open_files(pid)]
        workers = [pid for pid in holders if parent_pid(pid) in holders]
        if not workers:
            raise SystemExit(f"no chatroom worker listens on port {port}")
        targets.append(Target("chatroom", workers[0], chatroom_stage, ""))
    return targets


def parse_raw(path: Path) -> Counter:
    """Return py-spy's raw (collapsed) samples: stack tuple -> count."""
    samples: Counter = Counter()
    for line in path.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        frames = []
        for frame in stack_text.split(";"):
            function, _, where = frame.partition(" (")
            frames.append((function, where.rstrip(")")))
        samples[tuple(frames)] += int(count)
    return samples


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/uv pip install --python .venv/bin/python py-spy")
    return found


def drive(stack: Stack, bots: list[str], turns: int, clients: int, length: int, via: str) -> dict[str, int]:
    """Send each bot ``turns`` scripted messages from ``clients`` threads; return turns per bot."""
    done = Counter()
    lock = threading.Lock()
    errors: list[str] = []

    def client(bot: str, share: int) -> None:
        sent = 0
        make = chatroom_sender if via == "chatroom" and bot == "helpdesk" else direct_sender
        try:
            while sent < share:
                send = make(stack, bot)
                for index in range(min(length, share - sent)):
                    send(script_turn(bot, index))
                    sent += 1
        except Exception as exc:  # noqa: BLE001 - reported after the run
            errors.append(f"{bot}: {exc}")
        with lock:
            done[bot] += sent

    threads = [
        threading.Thread(target=client, args=(bot, turns // clients + (i < turns % clients)))
        for bot in bots for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit("turns failed: " + "; ".join(errors[:3]))
    return dict(done)


def profile(stack: Stack, args: argparse.Namespace, out: Path) -> list[Target]:
    bots = [bot for bot in SCRIPTS if bot in stack.hosts]
    targets = find_targets(stack, bots, args.via)
    drive(stack, bots, WARM_UP_TURNS, 1, WARM_UP_TURNS, args.via)
    recorders = []
    for target in targets:
        output = out / f"{target.pid}.txt"
        recorders.append((target, output, subprocess.Popen(
            [py_spy(), "record", "--pid", str(target.pid), "--rate", str(args.rate), "--format", "raw",
             "--function", *([] if args.wall else ["--gil"]), "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )))
    for target in targets:
        target.cpu_start = cpu_seconds(target.pid)
    handled = drive(stack, bots, args.turns, args.clients, args.length, args.via)
    for target in targets:
        target.cpu_end = cpu_seconds(target.pid)
    for target, output, recorder in recorders:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
        if output.exists():
            target.samples = parse_raw(output)
    for target in targets:
        target.turns = handled.get(target.bot, handled.get("helpdesk", 0))
    return targets


def table(targets: list[Target]) -> str:
    """Return the Markdown breakdown: process, CPU per turn, then each stage's share."""
    lines = [
        "| process | CPU per turn | stage | share of samples | ms per turn |",
        "| --- | --- | --- | --- | --- |",
    ]
    for target in targets:
        per_turn = (target.cpu_end - target.cpu_start) * 1000 / max(1, target.turns)
        stages: Counter = Counter()
        for stack, count in target.samples.items():
            stages[target.stage(list(stack))] += count
        total = sum(stages.values()) or 1
        first = True
        for stage, count in stages.most_common():
            share = count / total
            if share < 0.01:
                continue
            lines.append(
                f"| {target.label if first else ''} | {f'{per_turn:.1f} ms' if first else ''} | {stage} "
                f"| {share:.0%} | {per_turn * share:.1f} |"
            )
            first = False
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=400, help="messages per bot (default 400)")
    parser.add_argument("--clients", type=int, default=2, help="concurrent conversations per bot (default 2)")
    parser.add_argument("--length", type=int, default=10, help="turns per conversation (default 10)")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second (default 100)")
    parser.add_argument("--via", choices=["direct", "chatroom"], default="direct",
                        help="send the helpdesk's turns straight to it or through the chatroom")
    parser.add_argument("--wall", action="store_true",
                        help="sample every active thread (CPU, disk waits and waits for a core), "
                             "not only threads running Python code (holding the GIL)")
    parser.add_argument("--keep", type=Path, help="also keep py-spy's raw samples in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-turn-") as scratch:
        out = Path(scratch)
        with temporary_stack() as stack:
            targets = profile(stack, args, out)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for target in targets:
                source = out / f"{target.pid}.txt"
                if source.exists():
                    shutil.copy(source, args.keep / f"{target.label.replace(' ', '_')}.txt")
    print(f"{args.turns} turns per bot, {args.clients} conversations at once, {args.length} turns each, "
          f"{args.via}; load average {os.getloadavg()[0]:.1f}")
    print(table(targets))


if __name__ == "__main__":
    main()
