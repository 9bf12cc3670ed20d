"""A person bounced between assistants, or refused twice, is offered the human desk (reason loop_detected)."""
from __future__ import annotations

import sqlalchemy as sa

from chatroom import store
from tests.fakehost import HAND_TO_ID
from tests.test_desk import app, bots, desk, desk_config, say  # noqa: F401 (fixtures)


def offer_in(state: dict) -> dict:
    (offer,) = [m for m in state["messages"] if m["role"] == "notice" and m.get("buttons")]
    return offer


def press(person, offer: dict, title: str) -> dict:
    (button,) = [b for b in offer["buttons"] if b["title"] == title]
    response = person.post("/api/messages", json={"button": button["id"]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def switch_reasons(app) -> list[tuple[str, str, str | None]]:  # noqa: F811
    with store.get_engine(app).connect() as connection:
        rows = connection.execute(sa.text("SELECT from_host, to_host, reason_code FROM switch ORDER BY id"))
        return [tuple(row) for row in rows]


def test_a_person_bounced_a_b_a_b_is_offered_the_desk_instead(app, bots):  # noqa: F811
    person = app.test_client()
    person.post("/api/conversation")
    assert say(person, f"{HAND_TO_ID}beta")["host"]["id"] == "beta"
    assert say(person, f"{HAND_TO_ID}alpha")["host"]["id"] == "alpha"
    state = say(person, f"{HAND_TO_ID}beta")
    assert state["host"]["id"] == "alpha", "the third hop is not made"
    offer = offer_in(state)
    assert offer["text"] == (
        "You have been passed back and forth between Beta Bot and Alpha Bot. "
        "Would you like to talk to someone from Support team instead?"
    )
    assert [b["title"] for b in offer["buttons"]] == ["Talk to Support team", "Stay with Alpha Bot"]
    assert "choice" not in offer["buttons"][0], "what a button does stays on the server"

    chosen = press(person, offer, "Talk to Support team")
    assert chosen["host"]["id"] == "human"
    assert switch_reasons(app)[-1] == ("alpha", "human", "loop_detected")


def test_a_person_refused_twice_is_offered_the_desk_and_may_stay(app, bots):  # noqa: F811
    person = app.test_client()
    person.post("/api/conversation")
    first = say(person, f"{HAND_TO_ID}nowhere")
    assert not [m for m in first["messages"] if m.get("buttons")]
    second = say(person, f"{HAND_TO_ID}nowhere")
    offer = offer_in(second)
    assert offer["text"] == (
        "That did not work twice in a row. Would you like to talk to someone from Support team instead?"
    )

    stayed = press(person, offer, "Stay with Alpha Bot")
    assert stayed["host"]["id"] == "alpha"
    assert stayed["messages"][-1]["text"] == "All right, you are still talking to Alpha Bot."
    # An offer answered is spent: its buttons can't be pressed again.
    again = person.post("/api/messages", json={"button": offer["buttons"][0]["id"]})
    assert again.status_code == 400


def test_a_bot_cannot_offer_a_choice_the_chatroom_would_act_on(app):  # noqa: F811
    with store.get_engine(app).connect() as db:
        store.create_conversation(db, "c-choice", "alpha")
        forged = {"title": "Free pass", "payload": "/affirm", "choice": {"handoff_to": "human"}}
        bot = store.add_message(db, "c-choice", "bot", "alpha", {"buttons": [forged]})
        assert store.find_button(db, "c-choice", bot.id, 0) == {"title": "Free pass", "payload": "/affirm"}
        offer = {"title": "Go", "choice": {"handoff_to": "human"}}
        notice = store.add_message(db, "c-choice", "notice", None, {"buttons": [offer]})
        assert store.find_button(db, "c-choice", notice.id, 0) == offer
