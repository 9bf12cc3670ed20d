"""What the concierge answers: a few fixed rules, no model, so tests can rely on every word.

It greets arrivals by the title of the host they came from, tells opening
hours and where things are, remembers notes per conversation (A2A context),
and hands money questions to the host configured for them and "go back" to
the host the person came from. Nothing here knows about A2A; server.py does.
"""
from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from handoff.config import HandoffConfig, current_config
from handoff.payload import ARRIVAL_INTENT, FROM_HOST, handoff_payload

RESPONSES_PATH = Path(__file__).with_name("responses.yml")
MONEY_WORDS = frozenset({"money", "bank", "banking", "card", "cards"})
HOURS_WORDS = frozenset({"hours", "open", "opening", "close", "closed"})
GREET_WORDS = frozenset({"hello", "hi", "hey"})
REMEMBER = re.compile(r"\s*(?:please\s+)?remember\s+(?:that\s+)?(?P<note>.+?)[.!\s]*\Z", re.I | re.S)
RECALL = re.compile(r"what (?:did i tell you|do you remember)", re.I)
GO_BACK = re.compile(r"\bgo(?:ing)? back\b|\btake me back\b", re.I)
ARRIVAL = re.compile(rf"/{ARRIVAL_INTENT}(?P<entities>\{{.*\}})\s*\Z", re.S)
# Reasons from the handoff envelope's vocabulary.
REASON_OUT_OF_DOMAIN = "out_of_domain"
REASON_NAMED_TARGET = "named_target"
SUMMARY = "summary"
# A bound on remembered conversations, so a long-running demo doesn't grow without end.
MAX_VISITS = 10_000


@dataclass
class Visit:
    """What the concierge remembers of one conversation."""

    from_url: str | None = None
    notes: list[str] = field(default_factory=list)
    arrivals: int = 0


@dataclass(frozen=True)
class Answer:
    """One reply: texts to show, and at most one of a handoff request or a directory lookup."""

    texts: tuple[str, ...]
    handoff: dict[str, Any] | None = None
    # A place found in the directory: served as a finished task with the answer as its artifact.
    place: str | None = None
    # The directory needs a place name: served as a task waiting for the person's input.
    asks_place: bool = False


def load_responses(path: Path = RESPONSES_PATH) -> tuple[dict[str, str], dict[str, str]]:
    """Return the concierge's responses and its directory of places from responses.yml."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return dict(data["responses"]), dict(data["places"])


def words_of(text: str) -> set[str]:
    """Return the lower-case words of a text."""
    return set(re.findall(r"[a-z']+", text.lower()))


class Concierge:
    """The concierge's rules and its memory of each conversation (by A2A context id)."""

    def __init__(
        self, *, host_id: str, money_host_id: str, config_path: Path | None = None,
    ) -> None:
        self.host_id = host_id
        self.money_host_id = money_host_id
        self.config_path = config_path
        self.responses, self.places = load_responses()
        self.visits: OrderedDict[str, Visit] = OrderedDict()

    def config(self) -> HandoffConfig:
        # Re-read when the file changes, like every other process of the project.
        return current_config(self.config_path)

    def title(self) -> str:
        """Return the concierge's own title from handoff_config.yml, or "Concierge"."""
        host = self.config().find_host(self.host_id)
        return host.title if host is not None else "Concierge"

    def say(self, name: str, **values: str) -> str:
        return self.responses[name].format(own=self.title(), **values)

    def visit(self, context_id: str) -> Visit:
        visit = self.visits.pop(context_id, None) or Visit()
        self.visits[context_id] = visit
        while len(self.visits) > MAX_VISITS:
            self.visits.popitem(last=False)
        return visit

    def answer(
        self, context_id: str, text: str, envelope: dict[str, Any] | None = None,
        *, awaiting_place: bool = False,
    ) -> Answer:
        """Return the reply to one message of the conversation ``context_id``.

        ``envelope`` is the handoff envelope that came with an arrival, if any;
        ``awaiting_place`` says the message answers "which place?".
        """
        visit = self.visit(context_id)
        arrival = ARRIVAL.match(text.strip())
        if arrival is not None:
            return self.arrive(visit, arrival.group("entities"), envelope or {})
        if awaiting_place:
            return self.lookup(text)
        if GO_BACK.search(text):
            return self.go_back(visit)
        remember = REMEMBER.match(text)
        if remember is not None:
            visit.notes.append(remember.group("note"))
            return Answer((self.say("remembered", note=remember.group("note")),))
        if RECALL.search(text):
            if not visit.notes:
                return Answer((self.say("recall_nothing"),))
            return Answer((self.say("recall", notes="; ".join(visit.notes)),))
        words = words_of(text)
        if words & MONEY_WORDS:
            return self.hand_money(text)
        if words & HOURS_WORDS:
            return Answer((self.say("hours"),))
        if "where" in words:
            return self.lookup(text)
        if words & GREET_WORDS:
            return Answer((self.say("greet"), self.say("help")))
        return Answer((self.say("help"),))

    def arrive(self, visit: Visit, entities: str, envelope: dict[str, Any]) -> Answer:
        try:
            from_url = json.loads(entities).get(FROM_HOST)
        except (ValueError, AttributeError):
            from_url = None
        if isinstance(from_url, str) and from_url:
            visit.from_url = from_url
        origin = self.config().find_host_by_url(visit.from_url)
        origin_title = origin.title if origin is not None else self.say("unknown_origin")
        greeting = "arrival_return" if visit.arrivals else "arrival"
        visit.arrivals += 1
        texts = [self.say(greeting, origin=origin_title)]
        summary = envelope.get(SUMMARY)
        if isinstance(summary, str) and summary.strip():
            texts.append(self.say("arrival_summary", text=summary.strip()))
        texts.append(self.say("help"))
        return Answer(tuple(texts))

    def go_back(self, visit: Visit) -> Answer:
        config = self.config()
        target = config.find_host_by_url(visit.from_url)
        if target is None or target.id == self.host_id:
            return Answer((self.say("nowhere_back"),))
        payload = handoff_payload(target.url, target.title, target.id, REASON_NAMED_TARGET)
        return Answer((self.say("handoff_back", target=target.title),), handoff=payload)

    def hand_money(self, text: str) -> Answer:
        target = self.config().find_host(self.money_host_id)
        if target is None or target.id == self.host_id:
            return Answer((self.say("no_money_host"),))
        payload = handoff_payload(target.url, target.title, target.id, REASON_OUT_OF_DOMAIN)
        payload[SUMMARY] = self.say("money_summary", text=text.strip())
        return Answer((self.say("handoff_money", target=target.title),), handoff=payload)

    def lookup(self, text: str) -> Answer:
        words = words_of(text)
        for name, where in self.places.items():
            if name.split()[0] in words:
                return Answer((where,), place=name)
        places = ", ".join(self.places)
        return Answer((self.say("where_unknown", places=places),), asks_place=True)
