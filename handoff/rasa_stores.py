"""The bots' tracker store and lock store: chosen by settings, and flat as a conversation grows.

Each bot's endpoints.yml names the two classes here; they read their settings
themselves, so ``rasa shell`` inside bots/<bot> needs no exported variable:

- ``DATABASE_URL`` unset: the tracker store is the SQLite file
  ``$HANDOFF_STATE_DIR/<bot>-tracker.db`` (``HANDOFF_STATE_DIR`` defaults to var/).
  ``postgresql://user:password@host:port/dbname``: the bot's own database
  ``<dbname>_<bot>_tracker`` on that server, created through Rasa's ``login_db``.
- ``REDIS_URL`` set: Rasa's RedisLockStore, keys under ``<bot>:lock:``; unset: locks
  in this process's memory (one Rasa server per bot).
- The bot id is ``HANDOFF_HOST_ID``, or else the folder Rasa runs in (bots/<bot>).

The tracker store keeps every event in Rasa's own ``events`` table, so the
``/conversations/<id>/tracker`` API, ``rasa shell`` and replays see the whole
history. What it hands the message processor is shorter: the conversation's state
at a *cut* (its slots, rebuilt by a few snapshot events) followed by the events
since the cut, which holds at least ``TAIL_TURNS`` user messages. The policies see
the dialogue states of the whole session all the same: the states before the cut
were computed when the cut was made and are prepended again (``past_states``). So
retrieving, replaying, copying and featurising a tracker, and the tracker sent to
the action server, stay the size of a few turns however long the conversation is;
a turn saves only the events it added. A cut is only made before a user message
that follows ``action_listen`` with no form active, where nothing that happens
after it can reach back past it (a rewind that does, a dump through the HTTP API
and a new session's carried-over slots load the events before the cut first).

What custom actions see: the tracker they receive has the whole current state
(slots, active form, latest message) but its ``events`` start at the cut, so they
hold at least the last ``TAIL_TURNS`` user messages, not necessarily all of them.

Every Rasa server of a bot may serve any conversation: the cached state of a
conversation is checked against the store's last event id on every retrieval and
brought up to date with the events another server added. Several servers (or
Sanic workers) of one bot need ``REDIS_URL`` for their locks. SQLite is kept open
on one connection and writes ahead (a log instead of two disk waits per commit).
"""
from __future__ import annotations

import collections
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Text, Tuple
from urllib.parse import urlsplit

import sqlalchemy as sa
from rasa.core.actions.action import ActionSessionStart
from rasa.core.brokers.broker import EventBroker
from rasa.core.lock import TicketLock
from rasa.core.lock_store import (
    DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX,
    InMemoryLockStore,
    LockStore,
    RedisLockStore,
)
from rasa.core.tracker_store import (
    AwaitableTrackerStore,
    FailSafeTrackerStore,
    SQLTrackerStore,
    TrackerStore,
    create_engine_kwargs,
)
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME, PREVIOUS_ACTION
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import (
    ActionExecuted,
    ConversationPaused,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
    deserialise_events,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from rasa.utils.endpoints import EndpointConfig

from handoff import rasa_speedups
from handoff.config import HOST_ID_ENV, state_dir

logger = logging.getLogger(__name__)

DATABASE_URL_ENV = "DATABASE_URL"
REDIS_URL_ENV = "REDIS_URL"
# The processor's tracker holds at least this many user messages after the cut and
# fewer than twice as many: enough for actions that look back a few turns (a
# handoff reason, "has this person talked to me before?"), few enough that a turn
# late in a conversation costs what one early in it costs.
TAIL_TURNS = 6
# Dialogue states kept from before the cut, per kind of state list a policy asks
# for. Must exceed the longest rule and the longest memorized story (in states,
# checked by tests/rasa_side/test_rasa_stores.py): a longer history never matches,
# a shorter one is kept whole. Each one costs the policies a little on every turn.
STATES_BEFORE_CUT = 16
# Conversations whose recent events this process keeps in memory.
CACHED_CONVERSATIONS = 1000
# Seconds a lock ticket lasts (Rasa's TICKET_LOCK_LIFETIME overrides it; Rasa's own
# default is 60). A server killed mid-turn leaves its ticket behind, and every
# replica waits for it to lapse. The chatroom gives up on a turn after
# CHATROOM_TURN_TIMEOUT (5 s), which cancels the turn and frees its ticket, and it
# sends one turn per conversation at a time, so no live turn needs a ticket longer.
LOCK_LIFETIME = 8
SQL_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
# Conversations whose tracker the store failed to read or write since the REST
# channel last asked. Rasa answers such a turn anyway (from an empty tracker, kept
# only in memory), so the channel (handoff/channel.py) answers 503 instead: the
# person is told to try again rather than shown replies that were never stored.
_failed_turns: set = set()


def store_failed(sender_id: Text) -> bool:
    """Return whether the store failed this conversation since the last call, and forget it."""
    failed = sender_id in _failed_turns
    _failed_turns.discard(sender_id)
    return failed


class StoreSettingsError(ValueError):
    """A setting the stores cannot use; the message names it, the value and the fix."""


def bot_id() -> str:
    """Return this bot's id: ``$HANDOFF_HOST_ID``, else the folder Rasa runs in."""
    return os.environ.get(HOST_ID_ENV, "").strip() or Path.cwd().name


def tracker_store_settings() -> Dict[str, Any]:
    """Return the keyword arguments of Rasa's SQLTrackerStore for this bot."""
    bot = bot_id()
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not url:
        folder = state_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return {"dialect": "sqlite", "db": str(folder / f"{bot}-tracker.db")}
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise StoreSettingsError(
            f"${DATABASE_URL_ENV}={url!r}: the bots' tracker store needs postgresql://user@host:port/dbname "
            f"(or unset it for SQLite files under $HANDOFF_STATE_DIR)"
        )
    if not parsed.database:
        raise StoreSettingsError(
            f"${DATABASE_URL_ENV}={url!r} names no database: add one, e.g. postgresql://user@host:5432/handoff"
        )
    database = f"{parsed.database}_{bot}_tracker"
    if not SQL_NAME.match(database):
        raise StoreSettingsError(
            f"${DATABASE_URL_ENV}: the tracker database name {database!r} (database + bot id) must be "
            f"lower-case letters, digits and underscores, at most 63 characters: rename the database"
        )
    return {
        "dialect": "postgresql",
        "host": parsed.host,
        "port": parsed.port,
        "db": database,
        "username": parsed.username,
        "password": parsed.password,
        "login_db": parsed.database,
        "query": dict(parsed.query) or None,
    }


def lock_store_backend() -> LockStore:
    """Return Rasa's RedisLockStore when ``$REDIS_URL`` is set, else its in-memory lock store."""
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        return InMemoryLockStore()
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise StoreSettingsError(f"${REDIS_URL_ENV}={url!r}: expected redis://[user:password@]host:port/db")
    database = parts.path.strip("/") or "0"
    if not database.isdigit():
        raise StoreSettingsError(f"${REDIS_URL_ENV}={url!r}: the database after the port must be a number")
    store = RedisLockStore(
        host=parts.hostname, port=parts.port or 6379, db=int(database),
        username=parts.username or None, password=parts.password or None, use_ssl=parts.scheme == "rediss",
    )
    # Rasa only takes alphanumeric prefixes; bot ids may hold underscores, so set it whole.
    store.key_prefix = f"{bot_id()}:{DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX}"
    return store


class HandoffLockStore(LockStore):
    """The bot's lock store, chosen by ``$REDIS_URL`` (see the module docstring)."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None) -> None:
        self.backend = lock_store_backend()
        super().__init__()

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        lifetime = int(os.environ.get("TICKET_LOCK_LIFETIME") or LOCK_LIFETIME)
        return super().issue_ticket(conversation_id, min(lock_lifetime, lifetime))

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        return self.backend.get_lock(conversation_id)

    def delete_lock(self, conversation_id: Text) -> None:
        self.backend.delete_lock(conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        self.backend.save_lock(lock)


def whole_tracker(sender_id: Text, events: List[Event]) -> DialogueStateTracker:
    """Return a tracker holding ``events``, for reading its event lists (its state is not replayed)."""
    whole = DialogueStateTracker(sender_id, None)
    whole.events = whole._create_events(events)
    return whole


# A copy of a CheckpointedTracker (what the processor hands an action) can give the
# whole session through this attribute, for Rasa's session start (see ``install``).
WHOLE_SESSION = "handoff_whole_session"
slot_events_by_rasa = ActionSessionStart._slot_set_events_from_tracker


def carried_over_slot_events(tracker: DialogueStateTracker) -> List[SlotSet]:
    """Return the slot events Rasa's session start carries over, read from the whole session."""
    whole_session = getattr(tracker, WHOLE_SESSION, None)
    if whole_session is not None:
        tracker = whole_tracker(tracker.sender_id, whole_session())
    return slot_events_by_rasa(tracker)


def init_tracker_of_wrapped_store(self: TrackerStore, sender_id: Text) -> DialogueStateTracker:
    """Let a tracker store wrapper start a conversation with the tracker the store it wraps makes."""
    return self._tracker_store.init_tracker(sender_id)


def install() -> None:
    """Put Rasa's speed-ups in place, and let a new session carry over every slot event as before."""
    rasa_speedups.install()
    ActionSessionStart._slot_set_events_from_tracker = staticmethod(carried_over_slot_events)
    # Rasa's agent wraps the store (FailSafeTrackerStore; AwaitableTrackerStore too if
    # the store is not async), and a wrapper's create_tracker would make a plain tracker.
    for wrapper in (FailSafeTrackerStore, AwaitableTrackerStore):
        wrapper.init_tracker = init_tracker_of_wrapped_store  # type: ignore[method-assign]


# What a policy asks ``past_states`` for, as a hashable key and as the arguments.
StatesKey = Tuple[bool, bool, str]
StatesArgs = Tuple[bool, bool, Optional[Dict[Text, Any]]]
# Every kind of state list asked for in this process; a new cut carries them all.
asked_state_lists: Dict[StatesKey, StatesArgs] = {}


def states_key(omit_unset_slots: bool, ignore_rule_only_turns: bool,
               rule_only_data: Optional[Dict[Text, Any]]) -> StatesKey:
    return omit_unset_slots, ignore_rule_only_turns, json.dumps(rule_only_data, sort_keys=True)


def copy_state(state: State) -> State:
    """Return a copy a policy may change without touching ours (values are immutable)."""
    return {kind: dict(sub_state) for kind, sub_state in state.items()}


@dataclass
class StatesFold:
    """Rasa's ``Domain.states_for_tracker_history``, one prior tracker at a time.

    The same steps in the same order, but it can stop at a cut and carry on later
    from what it kept: the last ``STATES_BEFORE_CUT`` states and its two flags.
    """

    domain: Domain
    omit_unset_slots: bool
    ignore_rule_only_turns: bool
    rule_only_data: Optional[Dict[Text, Any]]
    states: List[State] = field(default_factory=list)
    turn_was_hidden: bool = False
    last_ml_action_sub_state: Optional[Dict[Text, Text]] = None

    def visit(self, tracker: DialogueStateTracker, hide_rule_turn: bool) -> None:
        domain = self.domain
        if self.ignore_rule_only_turns:
            if not self.turn_was_hidden:
                self.last_ml_action_sub_state = domain._get_prev_action_sub_state(tracker)
            if not tracker.followup_action and not tracker.latest_action_name == tracker.active_loop_name:
                self.turn_was_hidden = hide_rule_turn
            if self.turn_was_hidden:
                return
        state = domain.get_active_state(tracker, omit_unset_slots=self.omit_unset_slots)
        if self.ignore_rule_only_turns:
            domain._remove_rule_only_features(state, self.rule_only_data)
            if self.states:
                domain._substitute_rule_only_user_input(state, self.states[-1])
            if self.last_ml_action_sub_state:
                state[PREVIOUS_ACTION] = self.last_ml_action_sub_state
        self.states.append(domain._clean_state(state))

    def resumed(self) -> "StatesFold":
        """Return a fold that carries on from this one without changing it."""
        return StatesFold(
            self.domain, self.omit_unset_slots, self.ignore_rule_only_turns, self.rule_only_data,
            [copy_state(state) for state in self.states], self.turn_was_hidden,
            dict(self.last_ml_action_sub_state) if self.last_ml_action_sub_state else None,
        )

    def kept(self) -> "StatesFold":
        """Return what a checkpoint keeps of this fold: the last states and the flags."""
        resumed = self.resumed()
        resumed.states = resumed.states[-STATES_BEFORE_CUT:]
        return resumed


@dataclass
class Checkpoint:
    """A conversation session cut before one user message: what rebuilds it without the past."""

    cut_id: int  # store id of the user message the events after the cut start with
    snapshot: List[str]  # events (JSON) that rebuild the state at the cut
    folds: Dict[StatesKey, StatesFold]  # the dialogue states before the cut, per kind

    @property
    def applied_snapshot(self) -> int:
        """Return how many snapshot events ``applied_events`` keeps (all after SessionStarted)."""
        return len(self.snapshot) - 2


class CheckpointedTracker(DialogueStateTracker):
    """The processor's tracker: the state at a cut and the events since (see the module docstring).

    Everything the processor, policies and actions read from it equals what the full
    tracker would give, except ``events`` itself, which holds the snapshot and the
    events since the cut. Whatever needs the full list loads it from the store first.
    """

    def __init__(self, sender_id: Text, domain: Domain, checkpoint: Optional[Checkpoint],
                 load_before_cut: Callable[[], List[Event]]) -> None:
        super().__init__(sender_id, domain.slots)
        self.checkpoint = checkpoint
        self.stored = 0  # how many of ``events`` are in the store
        self.materialized = False  # the events before the cut were loaded back
        self._load_before_cut = load_before_cut

    def tail_start(self) -> int:
        """Return the index in ``events`` of the first event after the cut."""
        return len(self.checkpoint.snapshot) if self.checkpoint else 0

    def restarted_after_cut(self) -> bool:
        start = self.tail_start()
        return any(isinstance(event, (Restarted, SessionStarted)) for event in list(self.events)[start:])

    def cut_holds(self, applied: List[Event]) -> bool:
        """Tell whether the applied events still start with the snapshot and the cut's message."""
        if self.checkpoint is None:
            return True
        count = self.checkpoint.applied_snapshot
        events = list(self.events)
        return len(applied) > count and applied[count] is events[self.tail_start()] and all(
            mine is theirs for mine, theirs in zip(applied[:count], events[2:self.tail_start()])
        )

    def materialize(self) -> None:
        """Put the events before the cut back, so ``events`` is the whole session."""
        if self.checkpoint is None:
            return
        before = self._load_before_cut()
        tail = list(self.events)[self.tail_start():]
        self.stored += len(before) - len(self.checkpoint.snapshot)
        self.events = self._create_events(before + tail)
        self.checkpoint = None
        self.materialized = True

    def full_events(self) -> List[Event]:
        if self.checkpoint is None:
            return list(self.events)
        return self._load_before_cut() + list(self.events)[self.tail_start():]

    def replay_events(self) -> None:
        # A rewind replays the applied events; if it reached back past the cut, the
        # snapshot no longer stands for what came before, so bring the past back.
        if self.checkpoint is not None and not self.restarted_after_cut() \
                and not self.cut_holds(self.applied_events()):
            self.materialize()
        super().replay_events()

    def _events_for_verbosity(self, event_verbosity: EventVerbosity) -> Optional[List[Event]]:
        # Dumps of this tracker (Rasa's HTTP API) show the whole session, as before.
        if event_verbosity == EventVerbosity.NONE or self.checkpoint is None:
            return super()._events_for_verbosity(event_verbosity)
        return whole_tracker(self.sender_id, self.full_events())._events_for_verbosity(event_verbosity)

    def copy(self) -> DialogueStateTracker:
        duplicate = super().copy()
        if self.checkpoint is not None:
            start, load_before_cut = self.tail_start(), self._load_before_cut
            setattr(duplicate, WHOLE_SESSION, lambda: load_before_cut() + list(duplicate.events)[start:])
        return duplicate

    def past_states(
        self,
        domain: Domain,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: Optional[Dict[Text, Any]] = None,
    ) -> List[State]:
        key = states_key(omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        asked_state_lists[key] = (omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        if self.checkpoint is None or self.restarted_after_cut():
            return super().past_states(domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        before = self.checkpoint.folds.get(key)
        applied = self.applied_events()
        if before is None or not self.cut_holds(applied):
            self.materialize()
            return super().past_states(domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        fold = before.resumed()
        fold.domain = domain
        prior = self.init_copy()
        for event in applied[:self.checkpoint.applied_snapshot]:
            prior.update(event)
        for event in applied[self.checkpoint.applied_snapshot:]:
            if isinstance(event, ActionExecuted):
                fold.visit(prior, event.hide_rule_turn)
            prior.update(event)
        fold.visit(prior, False)
        return fold.states


def snapshot_events(prior: DialogueStateTracker, listen: Event) -> List[Event]:
    """Return events that rebuild ``prior``'s state, ending with the real ``listen`` event."""
    at = listen.timestamp
    events: List[Event] = [
        ActionExecuted(ACTION_SESSION_START_NAME, timestamp=at), SessionStarted(timestamp=at)
    ]
    events += [
        SlotSet(slot.name, slot.value, timestamp=at) for slot in prior.slots.values() if slot.has_been_set
    ]
    if prior.is_paused():
        events.append(ConversationPaused(timestamp=at))
    events.append(listen)
    return events


def can_cut_before(previous: Event, previous_applied: Event, prior: DialogueStateTracker) -> bool:
    """Tell whether a session may be cut before a user message: it follows ``action_listen``
    directly (nothing between them was undone) and no form is active."""
    return (
        previous is previous_applied
        and isinstance(previous, ActionExecuted)
        and previous.action_name == ACTION_LISTEN_NAME
        and prior.active_loop_name is None
    )


def new_checkpoint(tracker: CheckpointedTracker, domain: Domain, row_ids: List[int]) -> Optional[Checkpoint]:
    """Return a checkpoint cut later in ``tracker``, or None if no place to cut is found.

    ``row_ids`` are the store ids of the tracker's events after its current cut.
    """
    events = list(tracker.events)
    start = tracker.tail_start()
    users = [index for index in range(start + 1, len(events)) if isinstance(events[index], UserUttered)]
    if len(users) < 2 * TAIL_TURNS or not asked_state_lists:
        return None
    candidates = set(users[:len(users) - TAIL_TURNS + 1])
    applied = tracker.applied_events()
    current = tracker.checkpoint
    if current is None or tracker.restarted_after_cut():
        # The applied events begin within this tracker: the states start from nothing.
        skip = 0
        folds = {key: StatesFold(domain, *arguments) for key, arguments in asked_state_lists.items()}
    elif tracker.cut_holds(applied) and all(key in current.folds for key in asked_state_lists):
        # They begin with the snapshot: the states carry on from those kept at the cut.
        skip = current.applied_snapshot
        folds = {key: current.folds[key].resumed() for key in asked_state_lists}
    else:
        return None
    position = {id(event): index for index, event in enumerate(events)}
    prior = tracker.init_copy()
    found: Optional[Tuple[int, List[Event], Dict[StatesKey, StatesFold]]] = None
    for number, event in enumerate(applied):
        index = position[id(event)]
        if number > skip and index in candidates \
                and can_cut_before(events[index - 1], applied[number - 1], prior):
            kept = {key: fold.kept() for key, fold in folds.items()}
            found = (index, snapshot_events(prior, events[index - 1]), kept)
        if number >= skip and isinstance(event, ActionExecuted):
            for fold in folds.values():
                fold.visit(prior, event.hide_rule_turn)
        prior.update(event)
    if found is None:
        return None
    index, snapshot, kept = found
    return Checkpoint(row_ids[index - start], [json.dumps(event.as_dict()) for event in snapshot], kept)


@dataclass
class Session:
    """What this process knows of a conversation's current session in the store."""

    started: Optional[float]  # timestamp of the session's SessionStarted, if any
    rows: List[Tuple[int, str]]  # (id, JSON) of the events after the cut (all if no cut)
    checkpoint: Optional[Checkpoint] = None


@dataclass
class Head:
    """The store's view of a conversation, read in one query to check what this process knows."""

    last_id: Optional[int]  # the newest event's id; None: no events
    started: Optional[float]  # the latest SessionStarted's timestamp
    since: int  # how many events have an id from the first one this process knows


class HandoffTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store on the bot's database, handing the processor a short tracker."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        host: Optional[Text] = None,
        event_broker: Optional[EventBroker] = None,
        **kwargs: Any,
    ) -> None:
        if host or kwargs:
            named = ", ".join(sorted(kwargs) + (["url"] if host else []))
            raise StoreSettingsError(
                f"endpoints.yml: tracker_store {type(self).__name__} takes no settings ({named}): "
                f"it reads ${DATABASE_URL_ENV} and $HANDOFF_STATE_DIR; remove them"
            )
        settings = tracker_store_settings()
        super().__init__(domain=domain, event_broker=event_broker, **settings)
        if settings["dialect"] == "sqlite":
            self._keep_one_sqlite_connection()
        else:
            self._check_connections_before_use()
        self._create_indexes()
        self.table = self.SQLEvent.__table__
        self.sessions: "collections.OrderedDict[Text, Session]" = collections.OrderedDict()

    def _check_connections_before_use(self) -> None:
        # After PostgreSQL restarts, every pooled connection is dead and Rasa's engine would
        # hand one to the next turn, which would fail; each one is checked when taken instead.
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, pool_pre_ping=True, **create_engine_kwargs(url))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    def _keep_one_sqlite_connection(self) -> None:
        # Rasa opens the file anew for every query; one connection (per thread) is kept
        # instead. It writes ahead: a commit appends to the log instead of waiting for
        # the disk twice, which would hold up every conversation of this one-threaded
        # server. A crash of the process loses nothing committed; a power cut may lose
        # the last turns.
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, poolclass=sa.pool.SingletonThreadPool)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

        @sa.event.listens_for(self.engine, "connect")
        def write_ahead(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    def _create_indexes(self) -> None:
        # A conversation's newest events and its latest session start, without a scan.
        for statement in (
            "CREATE INDEX IF NOT EXISTS ix_events_sender_id_id ON events (sender_id, id)",
            "CREATE INDEX IF NOT EXISTS ix_events_sender_id_type_timestamp "
            "ON events (sender_id, type_name, timestamp)",
        ):
            try:
                with self.engine.begin() as connection:
                    connection.exec_driver_sql(statement)
            except sa.exc.DBAPIError as exc:  # another server of this bot made it meanwhile
                logger.debug("index not created: %s", exc)

    def _head(self, connection: Any, sender_id: Text, first_id: int) -> Head:
        """Read the conversation's newest id, session start and events since ``first_id``."""
        table = self.table
        mine = table.c.sender_id == sender_id
        session_start = table.c.type_name == SessionStarted.type_name
        query = sa.select(
            sa.select(sa.func.max(table.c.id)).where(mine).scalar_subquery(),
            sa.select(sa.func.max(table.c.timestamp)).where(mine, session_start).scalar_subquery(),
            sa.select(sa.func.count()).where(mine, table.c.id >= first_id).scalar_subquery(),
        )
        last_id, started, since = connection.execute(query).one()
        return Head(last_id, started, since)

    def _rows(self, connection: Any, sender_id: Text, started: Optional[float],
              after: int = 0, before: Optional[int] = None) -> List[Tuple[int, str]]:
        """Return (id, JSON) of the session's events, as Rasa's query selects them, in id order."""
        table = self.table
        query = sa.select(table.c.id, table.c.data).where(table.c.sender_id == sender_id)
        if started is not None:
            query = query.where(table.c.timestamp >= started)
        if after:
            query = query.where(table.c.id > after)
        if before is not None:
            query = query.where(table.c.id < before)
        return [(row_id, data) for row_id, data in connection.execute(query.order_by(table.c.id))]

    def _events_before(self, sender_id: Text, started: Optional[float], cut_id: int) -> List[Event]:
        with self.engine.connect() as connection:
            rows = self._rows(connection, sender_id, started, before=cut_id)
        return deserialise_events([json.loads(data) for _, data in rows])

    def _remember(self, sender_id: Text, current: Session) -> None:
        self.sessions[sender_id] = current
        self.sessions.move_to_end(sender_id)
        while len(self.sessions) > CACHED_CONVERSATIONS:
            self.sessions.popitem(last=False)

    def _tracker(self, sender_id: Text, current: Session) -> CheckpointedTracker:
        checkpoint, started = current.checkpoint, current.started
        tracker = CheckpointedTracker(
            sender_id, self.domain, checkpoint,
            lambda: self._events_before(sender_id, started, checkpoint.cut_id if checkpoint else 0),
        )
        texts: Iterable[str] = (checkpoint.snapshot if checkpoint else []) + [row for _, row in current.rows]
        for event in deserialise_events([json.loads(text) for text in texts]):
            tracker.update(event)
        tracker.stored = len(tracker.events)
        return tracker

    def _current(self, sender_id: Text) -> Optional[Session]:
        """Return the conversation's session as the store holds it, updating what we know."""
        known = self.sessions.get(sender_id)
        first_id = known.rows[0][0] if known and known.rows else 0
        with self.engine.connect() as connection:
            head = self._head(connection, sender_id, first_id)
            if head.last_id is None:
                return None
            if known is not None and known.rows and known.started == head.started \
                    and known.rows[-1][0] <= head.last_id:
                # Current, or behind by what another server of this bot added since.
                newer = []
                if known.rows[-1][0] < head.last_id:
                    newer = self._rows(connection, sender_id, head.started, after=known.rows[-1][0])
                if head.since == len(known.rows) + len(newer):
                    known.rows += newer
                    return known
            return Session(head.started, self._rows(connection, sender_id, head.started))

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """Return the conversation's current session as a CheckpointedTracker, or None."""
        try:
            return await self._read(sender_id)
        except Exception:
            self._failed(sender_id)
            raise

    def init_tracker(self, sender_id: Text) -> DialogueStateTracker:
        """Return the tracker of a new conversation: a CheckpointedTracker with no cut.

        Saving it (Rasa's ``create_tracker`` does, and the turn again) inserts its
        new events, instead of Rasa's save counting the session's stored events first.
        """
        return CheckpointedTracker(sender_id, self.domain, None, list)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the events the tracker gained since it was retrieved (all new ones, for others)."""
        try:
            await self._write(tracker)
        except Exception:
            self._failed(tracker.sender_id)
            raise

    def _failed(self, sender_id: Text) -> None:
        # What this server knows of the conversation may be ahead of the store now.
        self.sessions.pop(sender_id, None)
        _failed_turns.add(sender_id)

    async def _read(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        current = self._current(sender_id)
        if current is None:
            self.sessions.pop(sender_id, None)
            return None
        tracker = self._tracker(sender_id, current)
        checkpoint = None
        if len(tracker.events) == tracker.tail_start() + len(current.rows):  # every row was an event
            checkpoint = new_checkpoint(tracker, self.domain, [row_id for row_id, _ in current.rows])
        if checkpoint is not None:
            kept = [row for row in current.rows if row[0] >= checkpoint.cut_id]
            current = Session(current.started, kept, checkpoint)
            tracker = self._tracker(sender_id, current)
        self._remember(sender_id, current)
        return tracker

    async def _write(self, tracker: DialogueStateTracker) -> None:
        if not isinstance(tracker, CheckpointedTracker):
            self.sessions.pop(tracker.sender_id, None)
            await super().save(tracker)
            return
        new_events = list(tracker.events)[tracker.stored:]
        if not new_events:
            return
        if self.event_broker is not None:
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)
        added = []
        with self.engine.begin() as connection:
            for new_event in new_events:
                row = self._event_row(tracker.sender_id, new_event)
                inserted = connection.execute(self.table.insert(), row)
                added.append((inserted.inserted_primary_key[0], row["data"]))
        tracker.stored = len(tracker.events)
        current = self.sessions.get(tracker.sender_id)
        if current is None or tracker.materialized \
                or any(isinstance(new_event, SessionStarted) for new_event in new_events):
            self.sessions.pop(tracker.sender_id, None)
        else:
            # Checked against the store at the next retrieval, in case another server wrote too.
            current.rows += added

    @staticmethod
    def _event_row(sender_id: Text, event: Event) -> Dict[str, Any]:
        """Return the row Rasa's SQLTrackerStore.save writes for ``event``."""
        data = event.as_dict()
        return {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }


# Rasa imports this module when it reads endpoints.yml, before it handles any message.
install()
