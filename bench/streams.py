"""A crowd waiting for a human: N open event streams at the desk while 100 people chat with the bots.

Run: .venv/bin/python -m bench.streams [--waiters 1000] [--people 100] [--rounds 3] [--runs 3] [--ref REF]
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
"""
from __future__ import annotations

import argparse
import resource
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from bench.load import ASK, SCRIPT_TURNS, crowd, parse_think, warm_up
from bench.measure import (
    Figures,
    add_arguments,
    compare,
    cpu_seconds,
    descendants,
    number,
    percentile,
    processes_running,
    rss_mib,
)
from tests.stack import Person, Stack, default_config, free_port

DESK_TITLE = "Support team"
HEALTH_EVERY = 0.1
SEED_TRIES = 5
STREAMS_READY_TIMEOUT = 120.0


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


class HealthProbe:
    """Ask /healthz on a fresh connection every HEALTH_EVERY seconds until stopped."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/healthz"
        self.times: list[float] = []
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
            self.times.append(time.perf_counter() - started)

    def __enter__(self) -> HealthProbe:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()

    def p99_ms(self) -> float:
        return 1000 * percentile(self.times, 0.99) if self.times else float("nan")


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
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                with self.lock:
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


def measure(stack: Stack, run: int, args: argparse.Namespace) -> Figures:
    # Both phases meet the same pauses (people are numbered alike), so the with ÷ without ratio of a
    # run compares the same offered load: only the waiters differ.
    rest_alone = cpu_at_rest(stack, args.rest)
    print("  at rest without waiters, % of a core: "
          + ", ".join(f"{name} {number(share)}" for name, share in rest_alone.items()), flush=True)
    alone, health_alone = chat(stack, args, run)
    print(f"  without waiters: turn p99 {number(alone['turn p99 ms'])} ms, "
          f"/healthz p99 {number(health_alone)} ms", flush=True)

    rss_before = chatroom_rss_mib(stack)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.seeders) as pool:
        waiters = list(pool.map(lambda _: seed_one(stack), range(args.waiters)))
    seeding = time.perf_counter() - started
    rss_seeded = chatroom_rss_mib(stack)
    print(f"  {len(waiters)} waiters at the desk in {seeding:.0f} s", flush=True)

    with Streams(stack.chatroom_url) as streams:
        for person in waiters:
            streams.open(person)
        deadline = time.monotonic() + STREAMS_READY_TIMEOUT
        while streams.started() + len(streams.refused()) < len(waiters) and time.monotonic() < deadline:
            time.sleep(0.5)
        ready = streams.started()
        if ready < len(waiters):
            print(f"  only {ready} of {len(waiters)} streams started; refused: {streams.refused()[:3]}",
                  flush=True)
        rss_streams = chatroom_rss_mib(stack)
        print(f"  {ready} streams open", flush=True)
        rest_crowded = cpu_at_rest(stack, args.rest)
        print("  at rest with the waiters, % of a core: "
              + ", ".join(f"{name} {number(share)}" for name, share in rest_crowded.items()), flush=True)
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
    add_arguments(parser)
    args = parser.parse_args()
    if args.turns > SCRIPT_TURNS:
        # A second pass hands the person back and forth again, and with a desk configured the
        # chatroom then offers the desk instead of the bot the script expects.
        parser.error(f"--turns: a conversation holds one pass of the script ({SCRIPT_TURNS} turns) "
                     "here; use --rounds for more turns per person")
    # Streams, the chatroom's side of them and its desk readers: several descriptors per waiter.
    raise_open_files(4 * args.waiters + 1024)
    print(f"{args.waiters} waiters, {args.people} people chatting ({args.rounds} conversations of "
          f"{args.turns} turns each), {args.runs} run(s); "
          f"a fresh stack per run")
    compare(args, lambda stack, run: measure(stack, run, args), config=config_with_desk, fresh_stack=True,
            warm_up=warm_up)


if __name__ == "__main__":
    main()
