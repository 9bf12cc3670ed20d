"""Long conversations for the Rasa-side tests, built from each bot's own conversation tests."""
import warnings
from pathlib import Path
from typing import Iterator, List

with warnings.catch_warnings():
    # Importing Rasa's core imports TensorFlow and SQLAlchemy, whose own imports warn.
    warnings.simplefilter("ignore")
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionExecuted,
        BotUttered,
        Event,
        Restarted,
        SessionStarted,
        UserUtteranceReverted,
        UserUttered,
    )
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.importers.importer import TrainingDataImporter

BOTS_DIR = Path(__file__).resolve().parents[2] / "bots"
BOTS = ["helpdesk", "financial"]


def conversation_tests(bot: str, domain: Domain) -> List[List[Event]]:
    """Return the events of each of the bot's conversation tests."""
    folder = BOTS_DIR / bot
    importer = TrainingDataImporter.load_from_dict(
        training_data_paths=[str(folder / "tests" / "test_stories.yml")],
        domain_path=str(folder / "domain.yml"),
    )
    trackers = TrainingDataGenerator(
        importer.get_conversation_tests(), domain, use_story_concatenation=False,
        augmentation_factor=0, remove_duplicates=False,
    ).generate_story_trackers()
    return [list(tracker.events) for tracker in sorted(trackers, key=lambda tracker: tracker.sender_id)]


def misunderstood(text: str) -> List[Event]:
    """Return a turn the core fallback answers and rewinds, as Rasa logs it."""
    return [
        UserUttered(text, {"name": "out_of_scope", "confidence": 0.2}, [], None),
        ActionExecuted("action_default_fallback"),
        BotUttered("Sorry, say that again?"),
        UserUtteranceReverted(),
        ActionExecuted("action_listen"),
    ]


def long_conversation(bot: str, domain: Domain) -> List[Event]:
    """Return every conversation test of the bot as one conversation, after a session start.

    Between tests comes a misunderstood message that is rewound; halfway, the
    person restarts (Rasa's restart and the new session it starts).
    """
    tests = conversation_tests(bot, domain)
    events: List[Event] = [
        ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
    ]
    for number, test in enumerate(tests):
        events += test[1:] if isinstance(test[0], ActionExecuted) else test
        if not (isinstance(events[-1], ActionExecuted) and events[-1].action_name == "action_listen"):
            events.append(ActionExecuted("action_listen"))
        events += misunderstood(f"what about thing {number}?")
        if number == len(tests) // 2:
            events += [
                UserUttered("start over", {"name": "restart", "confidence": 1.0}, [], None),
                ActionExecuted("action_restart"), Restarted(), ActionExecuted("action_session_start"),
                SessionStarted(), ActionExecuted("action_listen"),
            ]
    return events


def turns(events: List[Event]) -> Iterator[List[Event]]:
    """Split events into what each message adds: a user message up to the next action_listen."""
    turn: List[Event] = []
    for event in events:
        turn.append(event)
        if isinstance(event, ActionExecuted) and event.action_name == "action_listen":
            yield turn
            turn = []
    if turn:
        yield turn
