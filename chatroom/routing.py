"""One turn of a conversation: deliver to the current host only, and switch hosts on a handoff."""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import defaultdict
from typing import Any, Callable

from handoff.config import HandoffConfig, Host
from handoff.payload import HANDOFF_HOST, HANDOFF_TO, REASON, arrival_message, find_handoff

from . import db
from .hosts import HostUnavailable

logger = logging.getLogger(__name__)

# What the person reads about the chatroom itself (bots word their own replies).
NOW_TALKING_TO = "You are now talking to {title}."
HOST_UNAVAILABLE = "{title} is not answering right now. Please try again in a moment."
TARGET_UNAVAILABLE = "{title} is unavailable right now, so you are still talking to {current}."
HANDOFF_REFUSED = (
    "{current} tried to pass you to a destination this chatroom does not know, "
    "so you are still talking to {current}."
)
HOST_REMOVED = "{title} is no longer available here, so you are now talking to {entry}."

# Rasa's REST channel answers with these keys; anything else is dropped.
DISPLAY_KEYS = ("text", "image", "buttons")

Deliver = Callable[[Host, str, str, float], "list[dict[str, Any]]"]

_turn_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_turn_locks_guard = threading.Lock()


def turn_lock(conversation_id: str) -> threading.Lock:
    """Return the lock that keeps one turn at a time in flight for a conversation."""
    with _turn_locks_guard:
        return _turn_locks[conversation_id]


class Router:
    """Runs turns against the routing table with a given config and a way to reach hosts."""

    def __init__(
        self, connection: sqlite3.Connection, config: HandoffConfig, deliver: Deliver, budget: float
    ) -> None:
        self.db = connection
        self.config = config
        self._deliver = deliver
        # One budget for the whole turn, so a handoff's two calls still answer in time.
        self.deadline = time.monotonic() + budget

    def deliver(
        self, host: Host, sender: str, text: str, handoff: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Send to a host within what is left of this turn's time.

        ``handoff`` (the accepted request, with its reason) comes with an arrival
        message only: a desk files it with the session it opens.
        """
        remaining = self.deadline - time.monotonic()
        if remaining <= 0.05:
            raise HostUnavailable(f"{host.id}: no time left in this turn")
        if handoff is None:
            return self._deliver(host, sender, text, remaining)
        return self._deliver(host, sender, text, remaining, handoff=handoff)

    def current_host(self, conversation: db.Conversation) -> tuple[db.Conversation, Host]:
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
        return db.switch_host(self.db, conversation, entry.id, "host removed from config"), entry

    def notice(self, conversation: db.Conversation, text: str) -> db.Message:
        return db.add_message(self.db, conversation.id, "notice", None, {"text": text})

    def take_turn(
        self, conversation: db.Conversation, shown_text: str, sent_text: str
    ) -> db.Conversation:
        """Record what the person said, deliver it to the current host and handle its replies."""
        conversation, host = self.current_host(conversation)
        db.add_message(self.db, conversation.id, "user", host.id, {"text": shown_text})
        try:
            replies = self.deliver(host, conversation.id, sent_text)
        except HostUnavailable as exc:
            logger.warning("conversation=%s host=%s unavailable: %s", conversation.id, host.id, exc)
            self.notice(conversation, HOST_UNAVAILABLE.format(title=host.title))
            return conversation
        request = self.store_replies(conversation, host, replies)
        if request is not None:
            conversation = self.hand_off(conversation, host, request)
        return conversation

    def store_replies(
        self, conversation: db.Conversation, host: Host, replies: list[dict[str, Any]]
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
                db.add_message(self.db, conversation.id, "bot", host.id, body)
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
        self, conversation: db.Conversation, current: Host, request: dict[str, Any]
    ) -> db.Conversation:
        """Switch the conversation to the requested host if it is known and answers."""
        target = self.resolve_target(request)
        if target is None or target.id == current.id:
            logger.warning(
                "conversation=%s host=%s refused handoff payload %r: not another host in %s",
                conversation.id, current.id, request, self.config.path,
            )
            self.notice(conversation, HANDOFF_REFUSED.format(current=current.title))
            return conversation
        try:
            # The arrival names the host actually left, so the target can greet accordingly.
            greeting = self.deliver(target, conversation.id, arrival_message(current.url), request)
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
        conversation = db.switch_host(self.db, conversation, target.id, reason)
        logger.info("conversation=%s handed off %s -> %s", conversation.id, current.id, target.id)
        self.notice(conversation, NOW_TALKING_TO.format(title=target.title))
        if self.store_replies(conversation, target, greeting) is not None:
            # One hop per turn: a greeting that hands off again would bounce the person around.
            logger.warning(
                "conversation=%s host=%s handed off in its greeting; ignored",
                conversation.id, target.id,
            )
        return conversation
