"""A crowd waiting for a human: N open event streams at the desk while 100 people chat with the bots.

Run: .venv/bin/python -m bench.streams [--waiters 1000] [--people 100] [--rounds 3] [--runs 3] [--ref REF]
     .venv/bin/python -m bench.streams --alternate 4 [--segment 60]
Each run starts its own stack with a real Parlant desk (``python -m desk``) and:
1. lets --people chat through bench/load.py's script, with nobody at the desk,
   while /healthz is asked every 100 ms on a fresh connection; each person
   holds --rounds conversations one after another (by default 3,000 turns a
   phase, so its p99 is the 30th slowest turn, not one of ten stray ones);
2. seeds the waiters the way a person gets there: each asks the Helpdesk for
   someone else and presses "Support team" (two Rasa turns and a Parlant
   session each; --seeders at a time, not timed as part of any figure);
3. opens one GET /api/events per waiter, raw sockets held by one thread that
   reads whatever arrives, and waits until every stream has sent its first event;
4. lets the same number of new people chat again, with /healthz asked as before
   and the same pauses between turns as in step 1.
The chatroom's memory (RSS of its processes) is read before seeding, after it
and with every stream open: per waiting stay and per open stream. Before each
phase nobody chats for --rest seconds, and the CPU the chatroom, the desk (with
its Parlant server) and the whole stack use meanwhile is read: what the waiters
cost at rest, in per cent of one core.
The commit measured must serve GET /api/events.
With --waiters 0 the two phases differ in nothing: the with ÷ without ratio then
shows how far the p99 of this many turns moves on its own.

Whole phases of the same load drift apart by more than 10 % on a shared
machine. ``--alternate PAIRS`` compares within one stretch instead: after the
waiters are seeded, 100 people chat on, and the waiters' streams are closed
and opened again in windows of --segment seconds, in the order closed, open,
open, closed, ... (a straight drift meets both alike). A closed window starts
once the chatroom has let go of every stream (it notices at its next
keep-alive); an open one once every stream has sent its first event. Only
turns and /healthz probes that start and end inside a window count. Its
baseline has the waiters at the desk with their pages closed: the CPU at rest
in each state says what the stays cost without streams.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import resource
import selectors
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.load import ASK, SCRIPT_TURNS, Talker, check_all, converse, crowd, parse_think, warm_up
from bench.measure import (
    Figures,
    add_arguments,
    compare,
    cpu_seconds,
    descendants,
    latency_figures,
    number,
    percentile,
    processes_running,
    rss_mib,
)
from chatroom import settings
from tests.stack import Person, Stack, default_config, free_port

DESK_TITLE = "Support team"
HEALTH_EVERY = 0.1
SEED_TRIES = 5
STREAMS_READY_TIMEOUT = 120.0
# The chatroom's settings as the stack started from this environment runs them.
SETTINGS = settings.load()
# More conversations than any chatter holds in an --alternate run: numbers them apart across runs.
MAX_CONVERSATIONS = 1000


def config_with_desk() -> dict:
    config = default_config()
    # The desk listens on its port and Parlant's own server 18 above it (desk/).
    config["handoff_hosts"]["human"] = {
        "title": DESK_TITLE, "url": f"http://localhost:{free_port(also_free_at=18)}", "kind": "parlant",
    }
    return config


def raise_open_files(needed: int) -> None:
    """Let this process (and the stack it starts) hold ``needed`` descriptors, up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        print(f"warning: open files limited to {hard}; {needed} wanted (raise `ulimit -Hn`)", flush=True)


# A stretch of time, (start, end) in perf_counter() seconds.
Window = tuple[float, float]


def inside(windows: list[Window], started: float, seconds: float) -> bool:
    return any(start <= started and started + seconds <= end for start, end in windows)


class HealthProbe:
    """Ask /healthz on a fresh connection every HEALTH_EVERY seconds until stopped."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/healthz"
        self.times: list[tuple[float, float]] = []  # (perf_counter() at the start, seconds)
        self.failures = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.probe, daemon=True)

    def probe(self) -> None:
        while not self.stopped.wait(HEALTH_EVERY):
            started = time.perf_counter()
            try:
                requests.get(self.url, timeout=10).raise_for_status()
            except requests.RequestException:
                self.failures += 1
                continue
            self.times.append((started, time.perf_counter() - started))

    def __enter__(self) -> HealthProbe:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()

    def p99_ms(self, windows: list[Window] | None = None) -> float:
        """Return the p99 of every probe, or of those that started and ended inside ``windows``."""
        times = [seconds for started, seconds in self.times
                 if windows is None or inside(windows, started, seconds)]
        return 1000 * percentile(times, 0.99) if times else float("nan")


def seed_one(stack: Stack) -> Person:
    """Bring one person to the desk through the Helpdesk's offer; try again while refused as busy."""
    person = stack.person()
    person.start()
    for action, text in (("say", ASK), ("press", DESK_TITLE)):
        for attempt in range(SEED_TRIES):
            try:
                person.say(text) if action == "say" else person.press(text)
                break
            except requests.HTTPError as exc:
                response = exc.response
                if response is None or response.status_code != 503 or attempt == SEED_TRIES - 1:
                    raise
                time.sleep(float(response.headers.get("Retry-After", "2")))
    if person.host != "human":
        raise RuntimeError(f"a waiter did not reach the desk: {person.texts()}")
    return person


class Streams:
    """Open event streams over raw sockets, drained by one thread: cheap enough to hold thousands."""

    def __init__(self, chatroom_url: str) -> None:
        parts = urlsplit(chatroom_url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.selector = selectors.DefaultSelector()
        self.received: dict[socket.socket, bytes] = {}
        self.closed = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.drain, daemon=True)

    def open(self, person: Person) -> None:
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in person.http.cookies)
        request = (
            f"GET /api/events HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
            f"Accept: text/event-stream\r\nCookie: {cookies}\r\n\r\n"
        )
        sock = socket.create_connection(self.address, timeout=30)
        sock.sendall(request.encode())
        sock.setblocking(False)
        with self.lock:
            self.received[sock] = b""
            self.selector.register(sock, selectors.EVENT_READ)

    def drain(self) -> None:
        while not self.stopped.is_set():
            # Not under the lock: epoll lets streams be registered while another thread waits on it.
            ready = self.selector.select(timeout=0.2) if self.selector.get_map() else []
            if not ready:
                self.stopped.wait(0.05)
                continue
            for key, _ in ready:
                sock = key.fileobj
                with self.lock:
                    if sock not in self.received:
                        continue  # closed by close_all() meanwhile
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.selector.unregister(sock)
                        self.closed += 1
                    elif len(self.received[sock]) < 4096:
                        # The start of each stream is kept to check it; the rest is read and dropped.
                        self.received[sock] += data

    def started(self) -> int:
        """Return how many streams answered 200 and sent their first event."""
        with self.lock:
            return sum(1 for data in self.received.values()
                       if data.startswith(b"HTTP/1.1 200") and b"\r\n\r\n" in data and b"\n\n" in
                       data.split(b"\r\n\r\n", 1)[1])

    def refused(self) -> list[bytes]:
        with self.lock:
            return [data.split(b"\r\n", 1)[0] for data in self.received.values()
                    if data and not data.startswith(b"HTTP/1.1 200")]

    def close_all(self) -> None:
        """Close every stream with a reset, as a page closed at once: the chatroom's next write fails."""
        with self.lock:
            for sock in self.received:
                with contextlib.suppress(KeyError):
                    self.selector.unregister(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            self.received = {}
            self.closed = 0

    def open_now(self) -> int:
        with self.lock:
            return len(self.received) - self.closed

    def __enter__(self) -> Streams:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()
        for sock in self.received:
            sock.close()
        self.selector.close()


def chat(stack: Stack, args: argparse.Namespace, run: int) -> tuple[Figures, float]:
    """Let --people chat, --rounds conversations each, while /healthz is probed.

    Returns their figures and /healthz p99 ms.
    """
    first = run * args.people * args.rounds
    with HealthProbe(stack.chatroom_url) as probe:
        figures = crowd(stack, args.people, args.turns, parse_think(args.think), first, args.rounds)
    return figures, probe.p99_ms()


def chatroom_rss_mib(stack: Stack) -> float:
    """Return the chatroom's memory, its workers included (looked up each time: a worker may be new)."""
    return rss_mib(processes_running(stack.pid, "chatroom"))


def cpu_at_rest(stack: Stack, seconds: float) -> dict[str, float]:
    """Return the per cent of one core the chatroom, the desk and the whole stack use while nobody chats."""
    parts = {
        "chatroom": processes_running(stack.pid, "chatroom"),
        "desk": processes_running(stack.pid, "desk"),
        "stack": descendants(stack.pid),
    }
    before = {name: cpu_seconds(pids) for name, pids in parts.items()}
    time.sleep(seconds)  # the measurement's window, not a wait for a condition
    return {name: 100 * (cpu_seconds(pids) - before[name]) / seconds for name, pids in parts.items()}


def print_rest(label: str, shares: dict[str, float]) -> None:
    print(f"  at rest {label}, % of a core: "
          + ", ".join(f"{name} {number(share)}" for name, share in shares.items()), flush=True)


def seed(stack: Stack, args: argparse.Namespace) -> tuple[list[Person], float]:
    """Bring --waiters people to the desk, --seeders at a time; return them and the seconds it took."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.seeders) as pool:
        waiters = list(pool.map(lambda _: seed_one(stack), range(args.waiters)))
    seeding = time.perf_counter() - started
    print(f"  {len(waiters)} waiters at the desk in {seeding:.0f} s", flush=True)
    return waiters, seeding


def open_streams(streams: Streams, waiters: list[Person]) -> int:
    """Open one stream per waiter; return how many sent their first event (the rest are reported)."""
    for person in waiters:
        streams.open(person)
    deadline = time.monotonic() + STREAMS_READY_TIMEOUT
    while streams.started() + len(streams.refused()) < len(waiters) and time.monotonic() < deadline:
        time.sleep(0.5)
    ready = streams.started()
    if ready < len(waiters):
        print(f"  only {ready} of {len(waiters)} streams started; refused: {streams.refused()[:3]}",
              flush=True)
    return ready


def measure(stack: Stack, run: int, args: argparse.Namespace) -> Figures:
    # Both phases meet the same pauses (people are numbered alike), so the with ÷ without ratio of a
    # run compares the same offered load: only the waiters differ.
    rest_alone = cpu_at_rest(stack, args.rest)
    print_rest("without waiters", rest_alone)
    alone, health_alone = chat(stack, args, run)
    print(f"  without waiters: turn p99 {number(alone['turn p99 ms'])} ms, "
          f"/healthz p99 {number(health_alone)} ms", flush=True)

    rss_before = chatroom_rss_mib(stack)
    waiters, seeding = seed(stack, args)
    rss_seeded = chatroom_rss_mib(stack)

    with Streams(stack.chatroom_url) as streams:
        ready = open_streams(streams, waiters)
        rss_streams = chatroom_rss_mib(stack)
        print(f"  {ready} streams open", flush=True)
        rest_crowded = cpu_at_rest(stack, args.rest)
        print_rest("with the waiters", rest_crowded)
        crowded, health_crowded = chat(stack, args, run)
        still_open = streams.open_now()
    return {
        "turn median ms, no waiters": alone["turn median ms"],
        "turn p99 ms, no waiters": alone["turn p99 ms"],
        "turn median ms, with waiters": crowded["turn median ms"],
        "turn p99 ms, with waiters": crowded["turn p99 ms"],
        "turn p99 with / without": crowded["turn p99 ms"] / alone["turn p99 ms"],
        **{f"{name} CPU at rest, % of a core, no waiters": share for name, share in rest_alone.items()},
        **{f"{name} CPU at rest, % of a core, with waiters": share for name, share in rest_crowded.items()},
        "/healthz p99 ms, no waiters": health_alone,
        "/healthz p99 ms, with waiters": health_crowded,
        "unavailable, with waiters": crowded["unavailable"],
        "busy, with waiters": crowded["busy"],
        "lost + misrouted + out of order": sum(
            figures[key] for figures in (alone, crowded) for key in ("lost", "misrouted", "out of order")
        ),
        "streams started": ready,
        "streams open at the end": still_open,
        "KiB per waiting stay": 1024 * (rss_seeded - rss_before) / max(1, len(waiters)),
        "KiB per open stream": 1024 * (rss_streams - rss_seeded) / max(1, ready),
        "chatroom RSS MiB, streams open": rss_streams,
        "seeding s": seeding,
    }


def connections_known() -> set[str]:
    """Return the inode of every socket the kernel still lists (TCP, UDP, Unix) in this namespace."""
    known: set[str] = set()
    for table, column in (("tcp", 9), ("tcp6", 9), ("udp", 9), ("udp6", 9), ("unix", 6)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > column:
                    known.add(fields[column])
    return known


def dropped_but_held(pids: list[int]) -> int:
    """Return how many sockets these processes still hold whose connection the kernel has dropped.

    A stream reset by the bench leaves the kernel's tables at once, but its
    socket stays open in the chatroom until the stream notices and ends.
    """
    known = connections_known()
    held = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] not in known:
                        held += 1
    return held


def close_streams(stack: Stack, streams: Streams) -> float:
    """Close every stream and wait until the chatroom has let go of them; return the seconds it took.

    The chatroom notices a closed stream at its next write, up to STREAM_HEARTBEAT
    later; until then each one still costs it a heartbeat, so no window starts before they are gone.
    """
    started = time.monotonic()
    streams.close_all()
    deadline = started + 3 * SETTINGS["STREAM_HEARTBEAT"]
    while (held := dropped_but_held(processes_running(stack.pid, "chatroom"))) > 0:
        if time.monotonic() > deadline:
            print(f"  warning: the chatroom still holds {held} closed streams", flush=True)
            break
        time.sleep(0.5)
    return time.monotonic() - started


def window_order(pairs: int) -> list[str]:
    """Return ``pairs`` pairs of windows: closed, open, open, closed, ... (a drift meets both alike)."""
    return [condition for pair in range(pairs)
            for condition in (("closed", "open") if pair % 2 == 0 else ("open", "closed"))]


def alternate(stack: Stack, run: int, args: argparse.Namespace) -> Figures:
    """Compare the chatters' turns in windows with the waiters' streams open and closed, in one run.

    Whole phases of the same load drift by more than the waiters cost; windows
    of --segment seconds taken in the order closed, open, open, closed, ...
    (--alternate pairs) meet the same drift. The waiters stay at the desk
    throughout; only their streams open and close. Turns and /healthz probes
    count for a window when they start and end inside it: none during a switch.
    """
    rest_alone = cpu_at_rest(stack, args.rest)
    print_rest("without waiters", rest_alone)
    rss_before = chatroom_rss_mib(stack)
    waiters, seeding = seed(stack, args)
    seeded_at = time.monotonic()
    rss_seeded = chatroom_rss_mib(stack)
    rest_closed = cpu_at_rest(stack, args.rest)
    print_rest("with the waiters, streams closed", rest_closed)

    windows: dict[str, list[Window]] = {"closed": [], "open": []}
    talkers: list[Talker] = []
    stop = threading.Event()
    first = run * args.people * MAX_CONVERSATIONS

    def keep_chatting(i: int) -> None:
        for k in range(MAX_CONVERSATIONS):
            if stop.is_set():
                return
            talkers.append(converse(stack, first + i + args.people * k, args.turns, parse_think(args.think)))

    with Streams(stack.chatroom_url) as streams:
        started_counts = [open_streams(streams, waiters)]
        rss_streams = chatroom_rss_mib(stack)
        rest_open = cpu_at_rest(stack, args.rest)
        print_rest("with the waiters, streams open", rest_open)
        # Each waiter is told once that nobody has answered yet, at a heartbeat after
        # DESK_NO_ANSWER_AFTER: let those 1,000 notices pass before any window.
        if waiters:
            time.sleep(max(0.0, seeded_at + SETTINGS["DESK_NO_ANSWER_AFTER"] + SETTINGS["STREAM_HEARTBEAT"]
                           - time.monotonic()))
        switches: list[float] = []
        with HealthProbe(stack.chatroom_url) as probe, ThreadPoolExecutor(max_workers=args.people) as pool:
            chatting = [pool.submit(keep_chatting, i) for i in range(args.people)]
            while sum(len(talker.turn_times) for talker in list(talkers)) < args.people:
                time.sleep(0.5)  # every chatter under way before the first window
            state = "open"
            for condition in window_order(args.alternate):
                if condition != state:
                    if condition == "closed":
                        switches.append(close_streams(stack, streams))
                    else:
                        began = time.monotonic()
                        started_counts.append(open_streams(streams, waiters))
                        switches.append(time.monotonic() - began)
                    state = condition
                began = time.perf_counter()
                time.sleep(args.segment)  # the window itself, not a wait for a condition
                windows[condition].append((began, time.perf_counter()))
                print(f"  window {condition}: {args.segment:.0f} s, after a switch of "
                      f"{switches[-1] if switches else 0.0:.1f} s", flush=True)
            stop.set()
            for future in chatting:
                future.result()
        health = {condition: probe.p99_ms(spans) for condition, spans in windows.items()}

    turns = {
        condition: [seconds for talker in talkers
                    for started, seconds in zip(talker.turn_started, talker.turn_times)
                    if inside(spans, started, seconds)]
        for condition, spans in windows.items()
    }
    figures = {condition: latency_figures("turn", times) for condition, times in turns.items()}
    failed = [talker for talker in talkers if talker.error]
    for talker in failed[:3]:
        print(" ", talker.error, flush=True)
    lost, misrouted, out_of_order = check_all(stack, [talker for talker in talkers if not talker.error])
    return {
        "turns in windows, streams closed": len(turns["closed"]),
        "turns in windows, streams open": len(turns["open"]),
        "turn median ms, streams closed": figures["closed"]["turn median ms"],
        "turn median ms, streams open": figures["open"]["turn median ms"],
        "turn p99 ms, streams closed": figures["closed"]["turn p99 ms"],
        "turn p99 ms, streams open": figures["open"]["turn p99 ms"],
        "turn p99 open / closed": figures["open"]["turn p99 ms"] / figures["closed"]["turn p99 ms"],
        "/healthz p99 ms, streams closed": health["closed"],
        "/healthz p99 ms, streams open": health["open"],
        **{f"{name} CPU at rest, % of a core, no waiters": share for name, share in rest_alone.items()},
        **{f"{name} CPU at rest, % of a core, streams closed": share for name, share in rest_closed.items()},
        **{f"{name} CPU at rest, % of a core, streams open": share for name, share in rest_open.items()},
        "unavailable": sum(talker.unavailable for talker in talkers),
        "busy": sum(talker.busy for talker in talkers),
        "lost + misrouted + out of order": lost + misrouted + out_of_order,
        "people who failed": len(failed),
        "streams started, fewest of each opening": min(started_counts),
        "KiB per waiting stay": 1024 * (rss_seeded - rss_before) / max(1, len(waiters)),
        "KiB per open stream": 1024 * (rss_streams - rss_seeded) / max(1, started_counts[0]),
        "longest switch s": max(switches, default=0.0),
        "seeding s": seeding,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=1000, help="people waiting with open streams (1000)")
    parser.add_argument("--people", type=int, default=100, help="people chatting meanwhile (default 100)")
    parser.add_argument("--turns", type=int, default=SCRIPT_TURNS,
                        help=f"turns per conversation, at most {SCRIPT_TURNS} (default {SCRIPT_TURNS})")
    parser.add_argument("--rounds", type=int, default=3,
                        help="conversations each chatting person holds, one after another (default 3)")
    parser.add_argument("--think", default="3-8", help="seconds between a chatter's turns (default 3-8)")
    parser.add_argument("--seeders", type=int, default=8, help="waiters brought to the desk at once (8)")
    parser.add_argument("--rest", type=float, default=20.0, help="seconds of CPU reading at rest (20)")
    parser.add_argument(
        "--alternate", type=int, default=0, metavar="PAIRS",
        help="instead of two whole phases, compare windows with the waiters' streams open and closed, "
             "PAIRS of each, in the order closed, open, open, closed, ... (0: off)",
    )
    parser.add_argument("--segment", type=float, default=60.0,
                        help="seconds of each --alternate window (default 60)")
    add_arguments(parser)
    args = parser.parse_args()
    if args.turns > SCRIPT_TURNS:
        # A second pass hands the person back and forth again, and with a desk configured the
        # chatroom then offers the desk instead of the bot the script expects.
        parser.error(f"--turns: a conversation holds one pass of the script ({SCRIPT_TURNS} turns) "
                     "here; use --rounds for more turns per person")
    # Streams, the chatroom's side of them and its desk readers: several descriptors per waiter.
    raise_open_files(4 * args.waiters + 1024)
    chatting = (f"{args.alternate} pairs of {args.segment:.0f} s windows, streams closed and open"
                if args.alternate else f"{args.rounds} conversations of {args.turns} turns each")
    print(f"{args.waiters} waiters, {args.people} people chatting ({chatting}), {args.runs} run(s); "
          f"a fresh stack per run")
    how = alternate if args.alternate else measure
    compare(args, lambda stack, run: how(stack, run, args), config=config_with_desk, fresh_stack=True,
            warm_up=warm_up)


if __name__ == "__main__":
    main()
