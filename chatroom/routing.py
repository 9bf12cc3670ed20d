"""Turns, handoffs and hand-backs: deliver to the current host only, switch hosts on a handoff."""
from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from flask import current_app

from handoff.config import HandoffConfig, Host, current_config
from handoff.envelope import (
    CONVERSATION_ID,
    HANDOFF_ID,
    LOOP_DETECTED,
    NAMED_TARGET,
    OPERATOR_HANDBACK,
    SUMMARY,
    build_envelope,
    mask,
    read_envelope,
)
from handoff.payload import FROM_HOST, HANDOFF_HOST, HANDOFF_TO, REASON, find_handoff

from . import events, faults, parlant_client, stays, store
from .hosts import HostUnavailable, adapter_for
from .shared import Busy
from .web import ApiError

logger = logging.getLogger(__name__)

# What the person reads about the chatroom itself (bots word their own replies).
NOW_TALKING_TO = "You are now talking to {title}."
HOST_UNAVAILABLE = "{title} is not answering right now. Please try again in a moment."
TARGET_UNAVAILABLE = "{title} is unavailable right now, so you are still talking to {current}."
TARGET_BUSY = (
    "{title} is busy right now, so you are still talking to {current}. Please try again in a moment."
)
HANDOFF_REFUSED = (
    "{current} tried to pass you to a destination this chatroom does not know, "
    "so you are still talking to {current}."
)
HOST_REMOVED = "{title} is no longer available here, so you are now talking to {entry}."
LOOP_OFFER = (
    "You have been passed back and forth between {first} and {second}. "
    "Would you like to talk to someone from {desk} instead?"
)
REFUSALS_OFFER = "That did not work twice in a row. Would you like to talk to someone from {desk} instead?"
TALK_TO = "Talk to {desk}"
STAY_WITH = "Stay with {current}"
STAYING = "All right, you are still talking to {current}."
# A person handed back and forth, or refused twice, within this many seconds is offered a human.
LOOP_WINDOW = 600.0
JOINED = "{name} from {title} joined the conversation."

# How a stay at a desk ended when an operator handed the person back (the person leaving is "left").
HANDED_BACK = "handed_back"
# Rasa's REST channel answers with these keys; anything else is dropped.
DISPLAY_KEYS = ("text", "image", "buttons")

@dataclass(frozen=True)
class Turn:
    """What the person said (shown in the transcript, sent to the host) or chose from a chatroom offer."""

    shown: str
    sent: str | None
    choice: dict[str, Any] | None = None


def turn_lock(conversation_id: str):
    """Hold the lock that keeps one turn at a time in flight for a conversation, on any worker.

    A turn waits for the one before it at most as long as a turn may take (then
    Busy). Its holder keeps it for as long as the turn runs, and if the worker
    dies in the middle the lock lapses within half that wait: the turn behind it
    (the person sending again) still gets it.
    """
    budget = float(current_app.config["QUEUE_WAIT"]) + float(current_app.config["TURN_TIMEOUT"])
    return current_app.extensions["shared"].locks.hold(
        f"turn:{conversation_id}", wait=budget, lease=budget / 2
    )


class Router:
    """Runs turns, handoffs and hand-backs against the routing table with one config and time budget."""

    def __init__(self, connection: store.Connection, config: HandoffConfig) -> None:
        self.db = connection
        self.config = config
        self.gates = current_app.extensions["gates"]
        self.queue_wait = float(current_app.config["QUEUE_WAIT"])
        # One budget for the whole turn, so a handoff's two calls still answer in time.
        self.deadline = time.monotonic() + float(current_app.config["TURN_TIMEOUT"])

    def place_at(self, host: Host, wait: float | None = None):
        """Wait in line for one of the host's places (see gates.py); raise Busy if none comes in time."""
        return self.gates.for_host(host.id).place(self.queue_wait if wait is None else wait)

    def time_left(self, host: Host) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0.05:
            raise HostUnavailable(f"{host.id}: no time left in this turn")
        return remaining

    def current_host(self, conversation: store.Conversation) -> tuple[store.Conversation, Host]:
        """Return the conversation's host, moving it to the entry host if it left the config."""
        host = self.config.find_host(conversation.host_id)
        if host is not None:
            return conversation, host
        entry = self.config.entry_host
        logger.warning(
            "conversation=%s host=%s is gone from %s; moving to entry=%s",
            conversation.id, conversation.host_id, self.config.path, entry.id,
        )
        self.notice(conversation, HOST_REMOVED.format(title=conversation.host_id, entry=entry.title))
        return store.switch_host(self.db, conversation, entry.id, "host removed from config"), entry

    def notice(self, conversation: store.Conversation, text: str) -> store.Message:
        return store.add_message(self.db, conversation.id, "notice", None, {"text": text})

    def take_turn(self, conversation: store.Conversation, turn: Turn) -> store.Conversation:
        """Record what the person said, deliver it to the current host and handle its replies.

        Raises Busy, with nothing recorded or sent, when the host has no place in time.
        """
        conversation = self.finish_pending(conversation)
        conversation, host = self.current_host(conversation)
        if turn.choice is not None:
            return self.take_choice(conversation, host, turn)
        with self.place_at(host):
            # The turn's budget is for the host's work, not for the wait in line.
            self.deadline = time.monotonic() + float(current_app.config["TURN_TIMEOUT"])
            store.add_message(self.db, conversation.id, "user", host.id, {"text": turn.shown})
            try:
                replies = adapter_for(host, self.db).send(conversation.id, turn.sent, self.time_left(host))
            except HostUnavailable as exc:
                logger.warning("conversation=%s host=%s unavailable: %s", conversation.id, host.id, exc)
                self.notice(conversation, HOST_UNAVAILABLE.format(title=host.title))
                return conversation
        with store.transaction(self.db):
            request = self.store_replies(conversation, host, replies)
        if request is not None:
            conversation = self.hand_off(conversation, host, request)
        return conversation

    def store_replies(
        self, conversation: store.Conversation, host: Host, replies: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Store the displayable replies and return the first handoff request among them."""
        request = None
        for reply in replies:
            found = find_handoff(reply)
            if found is not None:
                request = request or found
                continue
            body = {key: reply[key] for key in DISPLAY_KEYS if reply.get(key)}
            if body:
                store.add_message(self.db, conversation.id, "bot", host.id, body)
        return request

    def resolve_target(self, request: dict[str, Any]) -> Host | None:
        """Return the host a handoff request names, or None unless it is exactly one known host."""
        by_url = by_id = None
        if HANDOFF_HOST in request:
            by_url = self.config.find_host_by_url(request[HANDOFF_HOST])
            if by_url is None:
                return None
        if HANDOFF_TO in request:
            by_id = self.config.find_host(request[HANDOFF_TO])
            if by_id is None:
                return None
        if by_url is not None and by_id is not None and by_url != by_id:
            return None
        return by_url or by_id

    def hand_off(
        self, conversation: store.Conversation, current: Host, request: dict[str, Any]
    ) -> store.Conversation:
        """Switch the conversation to the requested host if it is known and answers."""
        target = self.resolve_target(request)
        if target is None or target.id == current.id:
            logger.warning(
                "conversation=%s host=%s refused handoff payload %r: not another host in %s",
                conversation.id, current.id, request, self.config.path,
            )
            self.notice(conversation, HANDOFF_REFUSED.format(current=current.title))
            self.after_refusal(conversation, current)
            return conversation
        if self.offer_desk_on_loop(conversation, current, target):
            return conversation
        return self.switch(conversation, current, target, read_envelope(request))

    def desk(self) -> Host | None:
        """Return the human desk a person can be offered (the first kind: parlant host), if any."""
        return next((host for host in self.config.hosts if host.kind == "parlant"), None)

    def offer_desk(self, conversation: store.Conversation, current: Host, text: str) -> bool:
        """Offer the person the human desk instead (reason loop_detected); False if there is none to offer."""
        desk = self.desk()
        if desk is None or current.id == desk.id:
            return False
        store.add_message(self.db, conversation.id, "notice", None, {
            "text": text.format(desk=desk.title),
            "buttons": [
                {"title": TALK_TO.format(desk=desk.title),
                 store.CHOICE: {HANDOFF_TO: desk.id, REASON: LOOP_DETECTED}},
                {"title": STAY_WITH.format(current=current.title), store.CHOICE: {}},
            ],
        })
        logger.info("conversation=%s offered %s (loop detected at %s)", conversation.id, desk.id, current.id)
        return True

    def offer_desk_on_loop(self, conversation: store.Conversation, current: Host, target: Host) -> bool:
        """Offer the desk instead of a handoff that would bounce the person A→B→A→B."""
        recent = store.recent_switches(self.db, conversation.id, time.time() - LOOP_WINDOW, 2)
        # Already A→B then B→A; now A→B again.
        bounced = recent == [(current.id, target.id), (target.id, current.id)]
        if not bounced:
            return False
        text = LOOP_OFFER.format(first=target.title, second=current.title, desk="{desk}")
        return self.offer_desk(conversation, current, text)

    def after_refusal(self, conversation: store.Conversation, current: Host) -> None:
        """Count a handoff that failed; the second within LOOP_WINDOW brings the offer of the desk."""
        limits = current_app.extensions["shared"].limits
        if limits.hit("refused-handoffs", conversation.id, 1, LOOP_WINDOW) is not None:
            self.offer_desk(conversation, current, REFUSALS_OFFER)

    def take_choice(self, conversation: store.Conversation, current: Host, turn: Turn) -> store.Conversation:
        """Act on a choice from an offer the chatroom made: go to the desk it names, or stay."""
        store.add_message(self.db, conversation.id, "user", current.id, {"text": turn.shown})
        target = self.config.find_host(turn.choice.get(HANDOFF_TO))
        if target is None or target.id == current.id:
            self.notice(conversation, STAYING.format(current=current.title))
            return conversation
        reason = turn.choice.get(REASON, LOOP_DETECTED)
        envelope = build_envelope(reason, summary=f"Passed around; chose {target.title} when offered.")
        return self.switch(conversation, current, target, envelope)

    def switch(
        self, conversation: store.Conversation, current: Host, target: Host, envelope: dict[str, Any]
    ) -> store.Conversation:
        """Tell ``target`` the person arrives from ``current``; if it answers, make it their host.

        The envelope the target gets names where the person really comes from
        (whatever the sender claimed), and hides personal data unless the target
        is trusted; that is also what is stored with the switch. The handoff is
        noted before the target hears of it, so one cut short by a crash is
        finished later (``finish_pending``) instead of left half-done.
        """
        envelope = {
            **envelope, FROM_HOST: current.url, CONVERSATION_ID: conversation.id,
            HANDOFF_ID: secrets.token_hex(8),
        }
        if not target.trusted:
            envelope = mask(envelope)
        store.begin_switch(self.db, conversation.id, current.id, target.id, envelope)
        faults.reach("after_journal")
        return self.complete(conversation, current, target, envelope)

    def complete(
        self, conversation: store.Conversation, current: Host, target: Host, envelope: dict[str, Any]
    ) -> store.Conversation:
        """Tell the target of a noted handoff and record the switch, or give the handoff up if it can't."""
        try:
            greeting = self.arrive(conversation, current, target, envelope)
        except (Busy, HostUnavailable) as exc:
            logger.warning(
                "conversation=%s handoff %s -> %s failed: %s", conversation.id, current.id, target.id, exc
            )
            wording = TARGET_BUSY if isinstance(exc, Busy) else TARGET_UNAVAILABLE
            with store.transaction(self.db):
                store.end_switch(self.db, conversation.id)
                self.notice(conversation, wording.format(title=target.title, current=current.title))
            self.after_refusal(conversation, current)
            return conversation
        faults.reach("after_arrival")
        with store.transaction(self.db):
            conversation = store.switch_host(
                self.db, conversation, target.id, stays.stay_reason(envelope),
                reason_code=envelope.get(REASON), envelope=envelope,
            )
            self.notice(conversation, NOW_TALKING_TO.format(title=target.title))
            again = self.store_replies(conversation, target, greeting)
            store.end_switch(self.db, conversation.id)
        faults.reach("after_switch")
        logger.info("conversation=%s handed off %s -> %s", conversation.id, current.id, target.id)
        if again is not None:
            # One hop per turn: a greeting that hands off again would bounce the person around.
            logger.warning(
                "conversation=%s host=%s handed off in its greeting; ignored",
                conversation.id, target.id,
            )
        return conversation

    def arrive(
        self, conversation: store.Conversation, current: Host, target: Host, envelope: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Tell the target the person arrives (a desk that opened the stay already just greets)."""
        if target.kind == "parlant":
            stay = store.find_open_stay(self.db, conversation.id)
            opened_for_this = stay is not None and stay.opened_at >= self.pending_since(conversation)
            if opened_for_this and stay.host_id == target.id:
                return [{"text": stays.CONNECTING.format(title=target.title)}]
        adapter = adapter_for(target, self.db)
        with self.place_at(target, min(self.queue_wait, self.time_left(target))):
            return adapter.arrive(conversation.id, current, envelope, self.time_left(target))

    def pending_since(self, conversation: store.Conversation) -> float:
        pending = store.find_pending_switch(self.db, conversation.id)
        return pending.started_at if pending is not None else float("inf")

    def finish_pending(self, conversation: store.Conversation) -> store.Conversation:
        """Finish a handoff a crash cut short (call with the conversation's turn lock held).

        The target is told again with the same envelope (the same handoff id, so
        a bot that heard it already still greets a first visit as one) and the
        switch is recorded; if the target can't be reached, the handoff is given up.
        """
        pending = store.find_pending_switch(self.db, conversation.id)
        if pending is None:
            return conversation
        current = self.config.find_host(pending.from_host)
        target = self.config.find_host(pending.to_host)
        if current is None or target is None or conversation.host_id != current.id:
            store.end_switch(self.db, conversation.id)
            return conversation
        logger.warning(
            "conversation=%s finishing handoff %s -> %s cut short", conversation.id, current.id, target.id
        )
        return self.complete(conversation, current, target, pending.envelope)

    def hand_back(
        self, conversation_id: str, target_id: str | None, outcome: str, by: str
    ) -> store.Conversation:
        """Hand a person at a desk to a host, exactly as a bot's handoff would (arrival message and all).

        With no target, they go back to the host they came from. Used by the
        console's hand-back and by the person leaving the desk.
        """
        with turn_lock(conversation_id):
            conversation = store.find_conversation(self.db, conversation_id)
            found = stays.current_stay(self.db, self.config, conversation) if conversation else None
            if found is None:
                raise ApiError(409, "This conversation is no longer at the desk.")
            desk, stay = found
            if target_id:
                target = self.config.find_host(target_id)
            else:
                target = self.config.find_host(stay.from_host) or self.config.entry_host
            if target is None or target.id == desk.id:
                raise ApiError(400, "Choose a host from handoff_config.yml other than this desk.")
            envelope = build_envelope(
                OPERATOR_HANDBACK if outcome == HANDED_BACK else NAMED_TARGET,
                summary=f"{outcome.replace('_', ' ').capitalize()} by {by} from {desk.title}.",
            )
            conversation = self.switch(conversation, desk, target, envelope)
            if conversation.host_id != target.id:
                raise ApiError(502, f"{target.title} did not answer, so the person is still at {desk.title}.")
            store.close_stay(self.db, stay.session_id, f"{outcome}:{target.id}")
        logger.info("conversation=%s %s %s -> %s by %s", conversation_id, outcome, desk.id, target.id, by)
        try:
            stays.end_stay(stays.desk_client(desk), stay, f"{outcome}:{target.id}", by)
        except parlant_client.ParlantError as exc:
            # The routing table already says it ended; anyone polling learns it within one wait.
            logger.warning(
                "conversation=%s could not tell %s the stay ended: %s", conversation_id, desk.id, exc
            )
        return conversation

    def take_over(self, conversation_id: str, desk_id: str | None, operator: str) -> store.Conversation:
        """Move a conversation a bot has to a desk, where ``operator`` handles it; the bot is told nothing.

        Under the conversation's turn lock: the desk opens a stay as on any
        arrival (reason code ``operator_takeover``, taken by the operator) and
        the person is told who joined. The bot keeps its tracker as it was and
        hears from the person again only when someone hands them back.
        With no desk named, the first desk in the config takes it.
        """
        with turn_lock(conversation_id):
            conversation = store.find_conversation(self.db, conversation_id)
            if conversation is None:
                raise ApiError(404, "There is no such conversation.")
            conversation, current = self.current_host(conversation)
            if current.kind == "parlant":
                raise ApiError(409, f"This conversation is already at {current.title}.")
            desks = [host for host in self.config.hosts if host.kind == "parlant"]
            desk = self.config.find_host(desk_id) if desk_id else (desks[0] if desks else None)
            if desk is None or desk.kind != "parlant":
                raise ApiError(400, "Choose a desk: a host of kind: parlant in handoff_config.yml.")
            envelope = {REASON: None, SUMMARY: f"Taken over by {operator} from {current.title}."}
            conversation = self.switch(conversation, current, desk, envelope)
            if conversation.host_id != desk.id:
                raise ApiError(
                    502, f"{desk.title} did not answer, so the person is still with {current.title}."
                )
            stay = store.find_open_stay(self.db, conversation_id)
            with store.transaction(self.db):
                store.mark_takeover(self.db, conversation_id, stay.session_id, operator)
                self.notice(conversation, JOINED.format(name=operator, title=desk.title))
        logger.info(
            "conversation=%s taken over from %s to %s by %s", conversation_id, current.id, desk.id, operator
        )
        return conversation

def finish_cut_short(app) -> None:
    """Finish the handoffs a crashed worker left noted but not done.

    A note younger than a whole turn may belong to a turn still under way in
    another worker, so it is left until it is older; the conversation's lock
    keeps a sweep from meeting a turn. The person's next turn finishes one too.
    """
    with app.app_context():
        connection = store.get_db()
        budget = float(app.config["QUEUE_WAIT"]) + float(app.config["TURN_TIMEOUT"])
        for pending in store.list_pending_switches(connection):
            if time.time() - pending.started_at < budget:
                continue
            try:
                lock = f"turn:{pending.conversation_id}"
                with app.extensions["shared"].locks.hold(lock, wait=0, lease=2 * budget):
                    conversation = store.find_conversation(connection, pending.conversation_id)
                    if conversation is not None:
                        Router(connection, current_config()).finish_pending(conversation)
                        events.changed(conversation.id, app)
            except Busy:
                continue


def sweep_cut_short(app_ref) -> None:
    """Look for handoffs cut short every little while, for as long as the app lives."""
    while (app := app_ref()) is not None:
        try:
            finish_cut_short(app)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            logger.exception("could not finish the handoffs cut short")
        pause = float(app.config["QUEUE_WAIT"]) + float(app.config["TURN_TIMEOUT"])
        del app
        time.sleep(pause)


def init_app(app) -> None:
    """Start sweeping for handoffs cut short with the first request a worker serves (after it forked)."""
    started = threading.Event()
    app_ref = weakref.ref(app)

    def start() -> None:
        if not started.is_set():
            started.set()
            threading.Thread(target=sweep_cut_short, args=(app_ref,), name="handoffs", daemon=True).start()

    app.before_request(start)
