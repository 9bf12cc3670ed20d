"""Turns, handoffs and hand-backs: deliver to the current host only, switch hosts on a handoff."""
from __future__ import annotations

import logging
import time
from typing import Any

from flask import current_app

from handoff.config import HandoffConfig, Host
from handoff.payload import HANDOFF_HOST, HANDOFF_TO, REASON, find_handoff

from . import parlant_client, stays, store
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
JOINED = "{name} from {title} joined the conversation."

# Rasa's REST channel answers with these keys; anything else is dropped.
DISPLAY_KEYS = ("text", "image", "buttons")

def turn_lock(conversation_id: str):
    """Hold the lock that keeps one turn at a time in flight for a conversation, on any worker.

    A turn waits for the one before it at most as long as a turn may take (then
    Busy); the lock lapses by itself if its worker dies in the middle.
    """
    budget = float(current_app.config["QUEUE_WAIT"]) + float(current_app.config["TURN_TIMEOUT"])
    return current_app.extensions["shared"].locks.hold(
        f"turn:{conversation_id}", wait=budget, lease=2 * budget + 5
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

    def take_turn(
        self, conversation: store.Conversation, shown_text: str, sent_text: str
    ) -> store.Conversation:
        """Record what the person said, deliver it to the current host and handle its replies.

        Raises Busy, with nothing recorded or sent, when the host has no place in time.
        """
        conversation, host = self.current_host(conversation)
        with self.place_at(host):
            # The turn's budget is for the host's work, not for the wait in line.
            self.deadline = time.monotonic() + float(current_app.config["TURN_TIMEOUT"])
            store.add_message(self.db, conversation.id, "user", host.id, {"text": shown_text})
            try:
                replies = adapter_for(host, self.db).send(conversation.id, sent_text, self.time_left(host))
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
            return conversation
        return self.switch(conversation, current, target, request)

    def switch(
        self, conversation: store.Conversation, current: Host, target: Host, request: dict[str, Any]
    ) -> store.Conversation:
        """Tell ``target`` the person arrives from ``current``; if it answers, make it their host."""
        try:
            with self.place_at(target, min(self.queue_wait, self.time_left(target))):
                greeting = adapter_for(target, self.db).arrive(
                    conversation.id, current, request, self.time_left(target)
                )
        except Busy:
            logger.warning(
                "conversation=%s handoff %s -> %s: no place in time", conversation.id, current.id, target.id
            )
            self.notice(conversation, TARGET_BUSY.format(title=target.title, current=current.title))
            return conversation
        except HostUnavailable as exc:
            logger.warning(
                "conversation=%s handoff %s -> %s failed: %s",
                conversation.id, current.id, target.id, exc,
            )
            self.notice(
                conversation, TARGET_UNAVAILABLE.format(title=target.title, current=current.title)
            )
            return conversation
        reason = request.get(REASON) if isinstance(request.get(REASON), str) else None
        with store.transaction(self.db):
            conversation = store.switch_host(self.db, conversation, target.id, reason)
            self.notice(conversation, NOW_TALKING_TO.format(title=target.title))
            again = self.store_replies(conversation, target, greeting)
        logger.info("conversation=%s handed off %s -> %s", conversation.id, current.id, target.id)
        if again is not None:
            # One hop per turn: a greeting that hands off again would bounce the person around.
            logger.warning(
                "conversation=%s host=%s handed off in its greeting; ignored",
                conversation.id, target.id,
            )
        return conversation

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
            request = {HANDOFF_TO: target.id, REASON: f"{outcome} by {by}"}
            conversation = self.switch(conversation, desk, target, request)
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
            request = {HANDOFF_TO: desk.id, REASON: f"taken over by {operator}"}
            conversation = self.switch(conversation, current, desk, request)
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
