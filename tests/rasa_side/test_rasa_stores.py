"""The bots' tracker and lock stores: settings, and a short tracker that predicts as the whole one.

The long-conversation tests replay each bot's conversation tests one after the
other as a single conversation (with a restart and rewinds in between), turn by
turn as Rasa's processor would: retrieve, predict with the trained model's
policies before every action, save. The tracker the store hands out must predict
exactly what the whole tracker predicts and carry the same state, the store must
write exactly the rows Rasa's own SQL store writes, and the tracker must stay short.
"""
import asyncio
import base64
import copy
import json
import shutil
import sqlite3
import subprocess
import tarfile
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

with warnings.catch_warnings():
    # Importing Rasa's core imports TensorFlow and SQLAlchemy, whose own imports warn.
    warnings.simplefilter("ignore")
    import redis
    import sqlalchemy as sa
    from long_conversations import BOTS, BOTS_DIR, long_conversation, misunderstood, turns
    from rasa.core.actions.action import ActionSessionStart
    from rasa.core.agent import Agent
    from rasa.core.lock_store import InMemoryLockStore, RedisLockStore
    from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore
    from rasa.engine.constants import PLACEHOLDER_TRACKER
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionExecuted,
        Event,
        UserUtteranceReverted,
        UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

    from handoff import rasa_stores
    from handoff.rasa_stores import (
        CheckpointedTracker,
        HandoffLockStore,
        HandoffTrackerStore,
        StatesFold,
        StoreSettingsError,
    )
    from tests.rasa_side.servers import free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

SENDER = "long-conversation"


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the stores at a fresh state folder, with no database or Redis configured."""
    monkeypatch.setenv("HANDOFF_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("HANDOFF_HOST_ID", "helpdesk")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return tmp_path


# -- settings -----------------------------------------------------------------------------


def test_tracker_store_defaults_to_sqlite_under_the_state_folder(settings: Path):
    assert rasa_stores.tracker_store_settings() == {
        "dialect": "sqlite", "db": str(settings / "helpdesk-tracker.db"),
    }


def test_bot_id_defaults_to_the_folder_rasa_runs_in(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HANDOFF_HOST_ID", raising=False)
    monkeypatch.chdir(BOTS_DIR / "financial")
    assert rasa_stores.bot_id() == "financial"


def test_database_url_gives_the_bot_its_own_postgresql_database(settings: Path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://handoff:secret@127.0.0.1:6543/stack")
    assert rasa_stores.tracker_store_settings() == {
        "dialect": "postgresql", "host": "127.0.0.1", "port": 6543, "db": "stack_helpdesk_tracker",
        "username": "handoff", "password": "secret", "login_db": "stack", "query": None,
    }


@pytest.mark.parametrize("url, complaint", [
    ("sqlite:////tmp/x.db", "needs postgresql://"),
    ("postgresql://handoff@127.0.0.1:6543", "names no database"),
    ("postgresql://handoff@127.0.0.1:6543/Stack-2", "must be lower-case"),
])
def test_unusable_database_url_is_refused_with_the_fix(settings: Path, monkeypatch, url: str, complaint: str):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(StoreSettingsError, match=complaint):
        rasa_stores.tracker_store_settings()


def test_lock_store_is_in_memory_without_redis(settings: Path):
    assert isinstance(HandoffLockStore().backend, InMemoryLockStore)


def test_redis_url_gives_rasas_redis_lock_store_with_the_bots_prefix(settings: Path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://:pw@127.0.0.1:6390/3")
    backend = HandoffLockStore().backend
    assert isinstance(backend, RedisLockStore)
    assert backend.key_prefix == "helpdesk:lock:"
    kwargs = backend.red.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("127.0.0.1", 6390, 3, "pw")


def test_a_turn_whose_tracker_could_not_be_read_or_saved_is_reported_once(settings: Path, tmp_path: Path):
    store = HandoffTrackerStore(domain=Domain.empty())
    tracker = DialogueStateTracker.from_events("c1", [UserUttered("hello")])
    store.engine = sa.create_engine(f"sqlite:///{tmp_path / 'no such folder' / 'tracker.db'}")
    store.sessionmaker = sa.orm.sessionmaker(bind=store.engine)
    # As Rasa's agent wraps it: an error gives an empty tracker and a save kept in memory only.
    fail_safe = FailSafeTrackerStore(store)

    assert run(fail_safe.retrieve("c1")) is None
    assert (rasa_stores.store_failed("c1"), rasa_stores.store_failed("c1")) == (True, False)
    run(fail_safe.save(tracker))
    assert (rasa_stores.store_failed("c1"), rasa_stores.store_failed("other")) == (True, False)


def test_a_new_conversation_is_stored_without_counting_what_is_stored(settings: Path, monkeypatch):
    reference = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(settings / "rasa.db"))
    ours = HandoffTrackerStore(domain=Domain.empty())
    # Rasa's save counts the session's stored events before it writes; ours must not call it,
    # also when wrapped as Rasa's agent wraps it.
    rasa_saves = []
    rasa_save = SQLTrackerStore.save

    async def counted_save(self: SQLTrackerStore, tracker: DialogueStateTracker) -> None:
        rasa_saves.append(type(self).__name__)
        await rasa_save(self, tracker)

    monkeypatch.setattr(SQLTrackerStore, "save", counted_save)
    for store in (reference, FailSafeTrackerStore(ours)):
        tracker = run(store.get_or_create_tracker("c1"))
        tracker.update(UserUttered("hello", timestamp=1.0))
        tracker.update(ActionExecuted("utter_greet", timestamp=2.0))
        run(store.save(tracker))

    assert rasa_saves == ["SQLTrackerStore", "SQLTrackerStore"]
    kinds = [row[:2] + row[3:5] for row in stored_rows(settings / "helpdesk-tracker.db")]
    assert kinds == [row[:2] + row[3:5] for row in stored_rows(settings / "rasa.db")]
    assert [kind[1] for kind in kinds] == ["action", "user", "action"]
    assert [event.type_name for event in run(ours.retrieve("c1")).events] == ["action", "user", "action"]


def lasts(store: HandoffLockStore, seconds: float) -> bool:
    """Issue a ticket the way Rasa's lock() does (with Rasa's default); does it last ``seconds``?"""
    before = time.time()
    store.issue_ticket("conversation-1")
    after = time.time()
    expires = store.get_lock("conversation-1").tickets[-1].expires
    return before + seconds <= expires <= after + seconds


def test_a_ticket_lapses_soon_so_a_server_killed_mid_turn_blocks_its_conversation_briefly(settings: Path):
    assert lasts(HandoffLockStore(), rasa_stores.LOCK_LIFETIME)


def test_rasas_ticket_lock_lifetime_setting_still_rules(settings: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TICKET_LOCK_LIFETIME", "3")
    assert lasts(HandoffLockStore(), 3)


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://127.0.0.1:6379/first"])
def test_unusable_redis_url_is_refused(settings: Path, monkeypatch, url: str):
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(StoreSettingsError, match="REDIS_URL"):
        HandoffLockStore()


def test_endpoint_settings_for_the_tracker_store_are_refused(settings: Path):
    with pytest.raises(StoreSettingsError, match="takes no settings \\(db, dialect\\)"):
        HandoffTrackerStore(dialect="sqlite", db="other.db")


def test_sqlite_store_writes_ahead_and_indexes_conversations(settings: Path):
    HandoffTrackerStore(domain=Domain.empty())
    with sqlite3.connect(settings / "helpdesk-tracker.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        indexes = {row[1] for row in db.execute("PRAGMA index_list(events)")}
    assert {"ix_events_sender_id_id", "ix_events_sender_id_type_timestamp"} <= indexes


# -- long conversations -------------------------------------------------------------------


@pytest.fixture(scope="module", params=BOTS)
def bot(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def agent(bot: str) -> Agent:
    models = sorted((BOTS_DIR / bot / "models").glob("*.tar.gz"))
    assert models, f"bots/{bot}/models holds no trained model: run `make train`"
    return Agent.load(str(models[-1]))


def predict(agent: Agent, tracker: DialogueStateTracker) -> Any:
    target = agent.processor.model_metadata.core_target
    return agent.processor.graph_runner.run(inputs={PLACEHOLDER_TRACKER: tracker}, targets=[target])[target]


def state(tracker: DialogueStateTracker) -> Dict[str, Any]:
    """Return everything of a tracker the processor and actions read, but its event list."""
    current = tracker.current_state(EventVerbosity.NONE)
    current.pop("events")
    return current


def stamped(event: Event) -> Event:
    """Return the event with the time it is logged, as Rasa does."""
    event.timestamp = time.time()
    return event


def stored_rows(path: Path) -> List[Any]:
    """Return every stored event row but its id, in order."""
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id"
        ).fetchall()


def states_from_scratch(domain: Domain, tracker: DialogueStateTracker, args: Any) -> List[Dict[str, Any]]:
    """Return the dialogue states of a whole tracker computed with the store's StatesFold."""
    fold = StatesFold(domain, *args)
    for prior, hidden in tracker.generate_all_prior_trackers():
        fold.visit(prior, hidden)
    return fold.states


class Held:
    """One conversation held through Rasa's own SQL store and, alongside, through ours.

    Two of our stores on one database stand for two Rasa servers of the bot; they
    take the conversation in turns of three messages, so each finds its memory of
    the conversation sometimes current and sometimes behind the other's.
    """

    def __init__(self, agent: Agent, folder: Path) -> None:
        self.agent = agent
        self.reference = SQLTrackerStore(agent.domain, dialect="sqlite", db=str(folder / "rasa.db"))
        self.ours = [HandoffTrackerStore(domain=agent.domain) for _ in range(2)]
        self.turns = 0
        self.cuts: set = set()

    @property
    def store(self) -> HandoffTrackerStore:
        return self.ours[self.turns // 3 % 2]

    def retrieve(self) -> "tuple[DialogueStateTracker, DialogueStateTracker]":
        expected = run(self.reference.get_or_create_tracker(SENDER, append_action_listen=False))
        actual = run(self.store.get_or_create_tracker(SENDER, append_action_listen=False))
        assert state(actual) == state(expected)
        assert (sum(isinstance(e, UserUttered) for e in actual.events) > 1) \
            == (sum(isinstance(e, UserUttered) for e in expected.events) > 1)
        if isinstance(actual, CheckpointedTracker) and actual.checkpoint:
            self.cuts.add(actual.checkpoint.cut_id)
        return expected, actual

    def turn(self, events: List[Event]) -> DialogueStateTracker:
        """Log one message's events on both, predicting before each action as the processor does."""
        expected, actual = self.retrieve()
        for event in events:
            logged = [stamped(event)]
            if isinstance(event, ActionExecuted) and not expected.followup_action and self.turns:
                prediction = predict(self.agent, expected)
                assert predict(self.agent, actual) == prediction, f"turn {self.turns}, before {event}"
                # What the processor logs: the policy's events, then the action with its source.
                logged = [stamped(policy_event) for policy_event in prediction.events] + [ActionExecuted(
                    event.action_name, prediction.policy_name, prediction.max_confidence,
                    timestamp=time.time(), hide_rule_turn=prediction.hide_rule_turn,
                )]
            for logged_event in logged:
                expected.update(logged_event)
                actual.update(copy.deepcopy(logged_event))
        assert state(actual) == state(expected)
        run(self.reference.save(expected))
        run(self.store.save(actual))
        self.turns += 1
        return actual


def test_short_tracker_predicts_and_stores_exactly_as_the_whole_one(
    agent: Agent, settings: Path, monkeypatch: pytest.MonkeyPatch, bot: str
):
    monkeypatch.setenv("HANDOFF_HOST_ID", bot)
    held = Held(agent, settings)
    for events in turns(long_conversation(bot, agent.domain)):
        held.turn(events)
    expected, actual = held.retrieve()

    assert len(held.cuts) >= 5, "the conversation was never cut short"
    assert len(actual.events) * 3 < len(run(held.ours[0].retrieve_full_tracker(SENDER)).events)
    for verbosity in (EventVerbosity.AFTER_RESTART, EventVerbosity.APPLIED):
        assert actual.current_state(verbosity) == expected.current_state(verbosity)
    for args in rasa_stores.asked_state_lists.values():
        assert states_from_scratch(agent.domain, expected, args) \
            == agent.domain.states_for_tracker_history(expected, *args)
    # A new session (/session_start) carries every slot event over, from the copy an action gets.
    assert carried_over(actual) == carried_over(expected)

    # Rewinding further than the events after the cut needs the earlier ones back.
    rewinds: List[Event] = [UserUtteranceReverted() for _ in range(2 * rasa_stores.TAIL_TURNS + 2)]
    assert held.turn(rewinds + [ActionExecuted("action_listen")]).materialized
    held.turn(misunderstood("and now?"))

    assert stored_rows(settings / f"{bot}-tracker.db") == stored_rows(settings / "rasa.db")
    whole = run(held.ours[1].retrieve_full_tracker(SENDER)).current_state(EventVerbosity.ALL)
    assert whole == run(held.reference.retrieve_full_tracker(SENDER)).current_state(EventVerbosity.ALL)


def carried_over(tracker: DialogueStateTracker) -> List[Any]:
    """Return the slot events Rasa's session start would carry over from this tracker."""
    events = ActionSessionStart._slot_set_events_from_tracker(tracker.copy())
    return [(event.key, event.value, event.metadata) for event in events]


def count_states(key: str) -> int:
    """Return how many states a rule or memorized story key holds (top-level objects)."""
    depth = count = 0
    for character in key:
        if character == "{":
            count += depth == 0
            depth += 1
        elif character == "}":
            depth -= 1
    return count


def test_kept_states_outnumber_the_longest_rule_and_memorized_story(bot: str):
    model = sorted((BOTS_DIR / bot / "models").glob("*.tar.gz"))[-1]
    lengths = []
    with tarfile.open(model) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if name in ("rule_policy.json", "memorized_turns.json"):
                lookup = json.load(archive.extractfile(member))["lookup"]
                keys = lookup["rules"] if name == "rule_policy.json" else lookup
                # Rule keys are JSON; memorized stories are compressed unless configured otherwise.
                texts = [key if key.startswith("[") else zlib.decompress(base64.b64decode(key)).decode()
                         for key in keys]
                lengths += [count_states(text) for text in texts]
    assert len(lengths) > 20
    assert max(lengths) < rasa_stores.STATES_BEFORE_CUT


# -- PostgreSQL and Redis, started for these tests when installed ------------------------------


def wait_for(condition: Any, what: str, seconds: float = 30) -> None:
    """Wait until ``condition()`` is true, or fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {seconds:.0f} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """Start a throw-away Redis on a free loopback port; yield its URL."""
    program = shutil.which("redis-server")
    if program is None:
        pytest.skip("Redis is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_for(answers, "Redis answering")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_on_postgresql_the_short_tracker_predicts_and_stores_as_the_whole_one(
    agent: Agent, settings: Path, monkeypatch: pytest.MonkeyPatch, bot: str, postgresql: str
):
    monkeypatch.setenv("HANDOFF_HOST_ID", bot)
    monkeypatch.setenv("DATABASE_URL", postgresql)
    held = Held(agent, settings)
    for events in turns(long_conversation(bot, agent.domain)[:300]):
        held.turn(events)
    expected, actual = held.retrieve()

    assert len(held.cuts) >= 2, "the conversation was never cut short"
    whole = run(held.ours[0].retrieve_full_tracker(SENDER)).current_state(EventVerbosity.ALL)
    assert whole == run(held.reference.retrieve_full_tracker(SENDER)).current_state(EventVerbosity.ALL)
    assert held.ours[0].engine.url.database == f"handoff_{bot}_tracker"


def test_redis_lock_store_lets_one_server_at_a_time_handle_a_conversation(
    settings: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
):
    monkeypatch.setenv("REDIS_URL", redis_url)
    first, second = HandoffLockStore(), HandoffLockStore()  # two Rasa servers of one bot
    client = redis.Redis.from_url(redis_url)
    order: List[str] = []

    async def handle(store: HandoffLockStore, name: str, release: Optional[asyncio.Event] = None) -> None:
        async with store.lock("conversation-1", wait_time_in_seconds=0.05):
            order.append(f"{name} in")
            if release is not None:
                await release.wait()
            order.append(f"{name} out")

    async def both() -> None:
        release = asyncio.Event()
        holding = asyncio.ensure_future(handle(first, "first", release))
        while order != ["first in"]:
            await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(handle(second, "second"))
        while len(json.loads(client.get("helpdesk:lock:conversation-1"))["tickets"]) < 2:
            await asyncio.sleep(0.01)
        assert order == ["first in"]
        release.set()
        await asyncio.gather(holding, waiting)

    run(asyncio.wait_for(both(), timeout=30))
    assert order == ["first in", "first out", "second in", "second out"]
