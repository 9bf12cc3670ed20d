"""A person's stay at a human desk: open it, relay the operators' messages, tell the person how it goes.

A desk (a host of ``kind: parlant``) keeps one Parlant session per stay: the
chatroom opens it in manual mode on arrival, posts the person's messages as
``customer`` events, and relays ``human_agent`` and
``human_agent_on_behalf_of_ai_agent`` message events back into the transcript,
reading them with ``list_events(min_offset, wait_for_data)``. Parlant's session
is the source of truth for what the operators said; the chatroom keeps a copy
so the page, a reload and the console read one transcript.

While an operator types, the console tells the chatroom, which keeps "who is
typing" in the state workers share (never in the transcript or in Parlant).
"""
from __future__ import annotations

import logging
import random
import statistics
import threading
import time
import weakref
from typing import Any

import requests
from flask import current_app

from handoff.config import HandoffConfig, Host, current_config
from handoff.envelope import METADATA_KEY, REQUEST, SUMMARY
from handoff.payload import REASON

from . import events, parlant_client, store
from .shared import Busy
from .web import http_session

logger = logging.getLogger(__name__)

# "… is typing" shows this long unless renewed (the console renews it every 2 s while the operator types).
TYPING_SECONDS = 5.0
# What the person reads when a desk takes them (the operators' own words come later).
CONNECTING = "Connecting you with our {title}… someone will answer here shortly."
CLOSED_NOW = (
    "{title} is closed right now and opens {opens}. "
    "Leave your message here: it waits in their queue for the next shift."
)
CLOSED = "{title} closed this conversation. Write again any time to reach them."
NO_ANSWER = (
    "Nobody from {title} has answered yet. You can keep waiting, leave a message here "
    "for them to answer when they are back, or go back to {back_to}."
)
WROTE_AGAIN = "wrote again after the conversation was closed"
# What a custom event says when the chatroom ends a stay (it also wakes anyone long-polling).
STAY_ENDED = "stay_ended"


def desk_client(host: Host) -> parlant_client.Parlant:
    """Return a client for a desk's Parlant API, with the app's token and timeout."""
    timeout = float(current_app.config["TURN_TIMEOUT"])
    return parlant_client.Parlant(host.url, current_app.config["DESK_API_TOKEN"], http_session(), timeout)


def desk_opens(host: Host) -> str | None:
    """Return when a desk that is closed now (outside its ``hours:``) opens, in words; None while open."""
    return host.hours.opens() if host.hours is not None else None


def arrival_text(host: Host) -> str:
    """Return what a desk says to a person arriving: someone will answer, or when it opens."""
    opens = desk_opens(host)
    return CLOSED_NOW.format(title=host.title, opens=opens) if opens else CONNECTING.format(title=host.title)


def transcript_json(messages: list[store.Message], config: HandoffConfig) -> list[dict[str, Any]]:
    """Return the transcript as the session's metadata keeps it: who said what, in order."""
    lines = []
    for message in messages:
        host = config.find_host(message.host_id) if message.host_id else None
        line = {"role": message.role, "host": message.host_id, "text": message.body.get("text", "")}
        if message.role == "bot" and host is not None:
            line["title"] = host.title
        if message.body.get("buttons"):
            line["buttons"] = [button.get("title", "") for button in message.body["buttons"]]
        if message.body.get("image"):
            line["image"] = message.body["image"]
        lines.append(line)
    return lines


def stay_reason(envelope: dict[str, Any]) -> str | None:
    """Return what the queue shows as the reason: the person's words, else the sender's summary."""
    return envelope.get(REQUEST) or envelope.get(SUMMARY) or envelope.get(REASON)


def open_stay(
    connection: store.Connection, client: parlant_client.Parlant, config: HandoffConfig, desk: Host,
    conversation: store.Conversation, from_host: Host | None, envelope: dict[str, Any],
) -> store.Stay:
    """Open a manual-mode Parlant session for a conversation arriving at ``desk``.

    Its title and metadata name the conversation, the host handed from and the
    reason; its metadata holds the handoff envelope and the whole transcript so far.
    """
    reason = stay_reason(envelope)
    agents = client.list_agents()
    if not agents:
        raise parlant_client.ParlantError(f"{client.url} has no agent to stand for the team")
    from_title = from_host.title if from_host else "the chatroom"
    metadata = {
        "conversation_id": conversation.id,
        "from_host": from_host.id if from_host else None,
        "from_host_url": from_host.url if from_host else None,
        "from_title": from_title,
        "reason": reason,
        METADATA_KEY: envelope,
        "transcript": transcript_json(store.list_messages(connection, conversation.id), config),
    }
    title = f"{from_title}: {reason}" if reason else f"From {from_title}"
    session = client.create_session(
        agent_id=agents[0]["id"], title=title[:200], metadata=metadata, labels=["handoff"]
    )
    if session.get("mode") != parlant_client.MANUAL:
        # The desk makes every session manual; a stock Parlant server needs telling.
        session = client.update_session(session["id"], mode=parlant_client.MANUAL)
    if session.get("mode") != parlant_client.MANUAL:
        raise parlant_client.ParlantError(f"{client.url}: session {session.get('id')} is not in manual mode")
    stay = store.open_stay(
        connection, session["id"], conversation.id, desk.id,
        from_host.id if from_host else "", reason, reason_code=envelope.get(REASON),
    )
    announce_stay(stay)
    return stay


def announce_stay(stay: store.Stay) -> None:
    """Have a stay reader (on any worker) start reading a stay that was just opened and committed."""
    try:
        shared_state().bus.publish(events.STAYS_TOPIC, {"type": "stay", "session_id": stay.session_id})
    except Exception as exc:  # noqa: BLE001 - the stay is stored; the next sweep finds it
        logger.warning("could not announce stay=%s: %s", stay.session_id, exc)


def current_stay(
    connection: store.Connection, config: HandoffConfig, conversation: store.Conversation
) -> tuple[Host, store.Stay] | None:
    """Return the desk a conversation is at and its open stay, or None if it is with a bot."""
    host = config.find_host(conversation.host_id)
    if host is None or host.kind != "parlant":
        return None
    stay = store.find_open_stay(connection, conversation.id)
    if stay is None or stay.host_id != host.id:
        return None
    return host, stay


def operator_message(event: dict[str, Any]) -> dict[str, Any] | None:
    """Return the transcript body for an operator's message event, or None for any other event."""
    if event.get("kind") != "message" or event.get("deleted"):
        return None
    if event.get("source") not in parlant_client.OPERATOR_SOURCES:
        return None
    data = event.get("data") or {}
    text = data.get("message")
    if not isinstance(text, str) or not text:
        return None
    body: dict[str, Any] = {"text": text}
    if event["source"] == parlant_client.HUMAN_AGENT:
        # A person writing as themselves is shown by name; as the assistant, like the assistant.
        name = (data.get("participant") or {}).get("display_name")
        body["sender"] = str(name) if name else "Support"
    return body


def fetch_events(client: parlant_client.Parlant, stay: store.Stay, wait: int = 0) -> list[dict[str, Any]]:
    """Return the session's events not relayed yet, waiting up to ``wait`` s for one."""
    return client.list_events(stay.session_id, min_offset=stay.next_offset, wait_for_data=wait)


def store_events(connection: store.Connection, stay: store.Stay, events: list[dict[str, Any]]) -> int:
    """Copy the operator messages among Parlant events into the transcript; return how many were new.

    Reads from the first offset not yet relayed, so nothing is skipped, and
    stores each event once, so nothing doubles, however many relays run.
    """
    if not events:
        return 0
    messages = []
    for event in sorted(events, key=lambda event: int(event["offset"])):
        body = operator_message(event)
        if body is not None:
            messages.append((int(event["offset"]), body))
    next_offset = max(int(event["offset"]) for event in events) + 1
    stored = store.store_stay_events(connection, stay, messages, next_offset)
    if stored:
        # A message ends the typing indicator that announced it.
        set_typing(stay, None)
        current_app.extensions["reply_waits"].pop(stay.host_id, None)
    return stored


def relay(
    connection: store.Connection, client: parlant_client.Parlant, stay: store.Stay, wait: int = 0
) -> int:
    """Fetch and store what is new in a stay's session (see store_events); return how many were new."""
    return store_events(connection, stay, fetch_events(client, stay, wait))


def end_stay(client: parlant_client.Parlant, stay: store.Stay, outcome: str, operator: str) -> None:
    """Tell Parlant a stay ended (this also wakes every long poll on the session)."""
    client.update_session(stay.session_id, metadata={"outcome": outcome, "ended_by": operator})
    client.create_custom_event(stay.session_id, {"event": STAY_ENDED, "outcome": outcome, "by": operator})


def shared_state():
    return current_app.extensions["shared"]


def typing_json(stay: store.Stay) -> dict[str, Any] | None:
    """Return who is typing a reply and until when (epoch s; seconds_left for the page's timer)."""
    found = shared_state().typing.get(stay.session_id)
    if found is None:
        return None
    name, until = found
    return {"name": name, "until": until, "seconds_left": round(until - time.time(), 1)}


def set_typing(stay: store.Stay, name: str | None) -> bool:
    """Show (or, with no name, stop showing) that someone is typing to the person; True if that is news.

    Typing lives in the shared state only, never in the transcript or Parlant's history.
    """
    typing = shared_state().typing
    found = typing.get(stay.session_id)
    if name is None:
        if found is None:
            return False
        typing.clear(stay.session_id)
        return True
    until = time.time() + TYPING_SECONDS
    typing.set(stay.session_id, name, until)
    # A refresh from the same person needs no wake-up: the page counts down by itself.
    return found is None or found[0] != name


# Operators seen by the console within this many seconds count as there (online or away).
PRESENCE_SECONDS = 30.0
ONLINE, AWAY, OFFLINE = "online", "away", "offline"
ESTIMATE_WINDOW = 7 * 86400


def see_operator(name: str, state: str | None = None) -> None:
    """Record that an operator's console is open; online unless they said away (or say so now)."""
    presence = shared_state().presence
    before = presence.states().get(name, OFFLINE)
    if presence.see(name, state, PRESENCE_SECONDS) != before:
        events.presence_changed()


def forget_operator(name: str) -> None:
    """An operator logged out: offline at once."""
    shared_state().presence.forget(name)
    events.presence_changed()


def operator_states() -> dict[str, str]:
    """Return "online" or "away" for every operator seen lately; anyone else is offline."""
    return shared_state().presence.states()


def operators_online() -> int:
    return sum(1 for state in operator_states().values() if state == ONLINE)


def desk_json(connection, host: Host, stay: store.Stay) -> dict[str, Any]:
    """Return what the page shows about a stay: queue place, estimated wait, where to go back to."""
    config = current_config()
    back_to = config.find_host(stay.from_host) or config.entry_host
    opens = desk_opens(host)
    info: dict[str, Any] = {
        "title": host.title,
        "back_to": {"id": back_to.id, "title": back_to.title},
        # Nobody waits in a conversation an operator took over: they are already there.
        "waiting": stay.first_reply_at is None and stay.reason_code != store.OPERATOR_TAKEOVER,
        "operators_online": operators_online(),
        # While the desk is closed: when it opens (no wait is estimated then).
        "opens": opens,
    }
    if info["waiting"]:
        position = store.queue_position(connection, stay)
        typical = typical_reply_wait(connection, host.id)
        info["position"] = position
        info["estimated_wait_seconds"] = typical * position if typical is not None and opens is None else None
    return info


# A week's median changes slowly: every waiting page refreshes its estimate on each heartbeat, and
# re-reading a busy desk's week of reply times each time would cost more than all else they do.
ESTIMATE_FRESH_SECONDS = 10.0


def typical_reply_wait(connection, host_id: str) -> float | None:
    """Return the median seconds to a first reply at a desk over the last week (None: no replies yet).

    Kept per worker for ESTIMATE_FRESH_SECONDS, and forgotten at once when this worker relays a reply.
    """
    known: dict[str, tuple[float, float | None]] = current_app.extensions["reply_waits"]
    now = time.monotonic()
    found = known.get(host_id)
    if found is not None and now - found[0] < ESTIMATE_FRESH_SECONDS:
        return found[1]
    waits = store.recent_reply_waits(connection, host_id, time.time() - ESTIMATE_WINDOW)
    typical = statistics.median(waits) if waits else None
    known[host_id] = (now, typical)
    return typical


def tell_if_nobody_answers(
    connection, conversation: store.Conversation, found: tuple[Host, store.Stay] | None
) -> None:
    """Once per stay, tell a person nobody has answered in time, and what they can do.

    ``found`` is the conversation's ``current_stay``.
    """
    if found is None:
        return
    host, stay = found
    limit = float(current_app.config["DESK_NO_ANSWER_AFTER"])
    if stay.first_reply_at is not None or time.time() - stay.opened_at < limit:
        return
    if store.mark_no_answer_told(connection, stay.session_id):
        back_to = current_config().find_host(stay.from_host) or current_config().entry_host
        store.add_message(connection, conversation.id, "notice", None, {
            "text": NO_ANSWER.format(title=host.title, back_to=back_to.title),
        })
        events.changed(conversation.id)


# A stay nobody reads yet is picked up within this many seconds (at once when its opening is announced).
SWEEP_SECONDS = 10.0
# After the desk failed, a stay's reader waits this long at most before asking again.
MAX_BACKOFF_SECONDS = 10.0
# A reader holds its stay's relay lock on this lease, renewed while it reads (however long DESK_WAIT
# is): a reader on a worker that died gives its stays up within this many seconds.
RELAY_LEASE = 30.0


class Readers:
    """One reader per open stay, on whichever worker gets its lock: Parlant is read once per session.

    Each reader long-polls its session (``list_events(min_offset,
    wait_for_data)``), stores what operators said (each event once), and wakes
    the conversation's streams. Readers run as greenlets in the chatroom's
    gevent workers (threads elsewhere) and hold no database connection while
    they wait.
    """

    def __init__(self, app) -> None:
        self.app_ref = weakref.ref(app)
        self.reading: set[str] = set()
        self.guard = threading.Lock()
        self.started = False
        self.stopped = threading.Event()
        self.http = requests.Session()
        # Every open stay may have a long poll of its own in flight.
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=int(app.config["MAX_CONNECTIONS"]))
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    def start(self) -> None:
        with self.guard:
            if self.started:
                return
            self.started = True
        threading.Thread(target=self.supervise, name="stay-readers", daemon=True).start()

    def stop(self) -> None:
        """Stop sweeping and let each reader end after its current read (tests, app teardown)."""
        self.stopped.set()

    def supervise(self) -> None:
        """Start a reader for each stay announced as opened; sweep every open stay every SWEEP_SECONDS.

        The sweep catches stays whose announcement was lost (the bus reconnected)
        and stays whose reader's worker died. It is a query over every open
        stay, so it runs on its clock, not on every change.
        """
        app = self.app_ref()
        if app is None:
            return
        subscription = app.extensions["shared"].bus.subscribe([events.STAYS_TOPIC])
        del app
        next_sweep = 0.0
        while not self.stopped.is_set():
            app = self.app_ref()
            if app is None:
                break
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_SECONDS
                try:
                    with app.app_context():
                        open_ids = store.list_open_stay_ids(store.get_db())
                    for session_id in open_ids:
                        self.ensure_reader(session_id)
                except Exception:  # noqa: BLE001 - keep supervising; the next sweep tries again
                    logger.exception("could not list the open stays")
            del app
            news = subscription.get(timeout=max(0.0, next_sweep - time.monotonic()))
            if news is None:
                continue
            if news.get("session_id"):
                self.ensure_reader(str(news["session_id"]))
            else:
                next_sweep = 0.0  # A resync: announcements may have been lost.
        subscription.close()

    def ensure_reader(self, session_id: str) -> None:
        with self.guard:
            if session_id in self.reading:
                return
            self.reading.add(session_id)
        threading.Thread(target=self.read, args=(session_id,), name=f"stay-{session_id}", daemon=True).start()

    def read(self, session_id: str) -> None:
        backoff = 1.0
        try:
            while True:
                pause = self.read_once(session_id)
                if pause is None:
                    return
                if pause:
                    time.sleep(min(pause, backoff))
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                else:
                    backoff = 1.0
        finally:
            with self.guard:
                self.reading.discard(session_id)

    def read_once(self, session_id: str) -> float | None:
        """Read the stay once; return None when it is over, else seconds to pause first (0: none)."""
        app = self.app_ref()
        if app is None or self.stopped.is_set():
            return None
        longest = int(app.config["DESK_WAIT"])
        # Readers started together (a worker starting with many open stays) would otherwise end
        # their waits together, each time, and ask the desk all at once.
        wait = random.randint((longest + 1) // 2, longest)
        with app.app_context():
            stay = store.find_stay(store.get_db(), session_id)
            host = current_config().find_host(stay.host_id) if stay is not None else None
            if stay is None or stay.closed_at is not None or host is None or host.kind != "parlant":
                return None
            client = parlant_client.Parlant(host.url, app.config["DESK_API_TOKEN"], self.http, wait)
        locks = app.extensions["shared"].locks
        try:
            with locks.hold(f"relay:{session_id}", wait=0, lease=RELAY_LEASE):
                found = fetch_events(client, stay, wait)
                if not found:
                    return 0.0
                with app.app_context():
                    stay = store.find_stay(store.get_db(), session_id)
                    stored = store_events(store.get_db(), stay, found)
        except Busy:
            # Another worker reads this stay; ask again later (read() spaces the asks out, up to
            # MAX_BACKOFF_SECONDS apart, so a dead holder's stay is taken soon after its lease lapses).
            return MAX_BACKOFF_SECONDS
        except parlant_client.ParlantError as exc:
            logger.warning("stay=%s could not read %s: %s", session_id, host.id, exc)
            return MAX_BACKOFF_SECONDS
        if stored:
            events.changed(stay.conversation_id, app)
        return 0.0


def init_app(app) -> None:
    """Start the stay readers with the first request a worker serves (after gunicorn forked it)."""
    readers = app.extensions["stay_readers"] = Readers(app)
    app.extensions["reply_waits"] = {}
    app.before_request(readers.start)
