"""Operators watch conversations bots have, take one over unprompted, hand it back, and leave notes.

Against a real desk (``python -m desk``) and scripted bots, through Flask's test client.
"""
from __future__ import annotations

import sqlalchemy as sa

from chatroom import store
from tests import test_desk
from tests.sse import open_test_stream
from tests.test_desk import Desk, log_in, say, texts

# The desk's fixtures: scripted bots alpha and beta, a desk "human" ("Support team"), an app in front.
bots, desk_config, desk, app = test_desk.bots, test_desk.desk_config, test_desk.desk, test_desk.app


def person_with_alpha(app, first: str = "hello"):
    person = app.test_client()
    person.post("/api/conversation")
    say(person, first)
    return person


def conversation_id_of(operator, last_text: str) -> str:
    listed = operator.get("/desk/api/queue").get_json()["bots"]
    (entry,) = [e for e in listed if e["last"]["text"] == last_text]
    return entry["conversation_id"]


def take_over(operator, conversation_id: str, **body) -> dict:
    response = operator.post(f"/desk/api/conversations/{conversation_id}/take-over", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_console_lists_conversations_bots_had_lately_with_host_last_message_and_age(app, desk: Desk):
    person_with_alpha(app, "where is my parcel?")
    test_desk.at_desk(app, "a person please")
    operator = app.test_client()
    log_in(operator)

    listed = operator.get("/desk/api/queue").get_json()
    (entry,) = [e for e in listed["bots"] if e["last"]["text"] == "Alpha Bot heard: where is my parcel?"]
    assert entry["host"] == {"id": "alpha", "title": "Alpha Bot"}
    assert entry["last"]["role"] == "bot"
    assert listed["now"] - 60 < entry["started_at"] <= entry["active_at"] <= listed["now"]
    assert listed["watch_minutes"] == 30
    desk_conversations = {stay["conversation_id"] for stay in listed["conversations"]}
    assert desk_conversations and not desk_conversations & {e["conversation_id"] for e in listed["bots"]}

    # Quiet for longer than WATCH_MINUTES: no longer listed.
    with store.get_engine(app).connect() as connection:
        connection.execute(
            sa.text("UPDATE conversation SET updated_at = updated_at - 31 * 60 WHERE id = :id"),
            {"id": entry["conversation_id"]},
        )
    still = [e["conversation_id"] for e in operator.get("/desk/api/queue").get_json()["bots"]]
    assert entry["conversation_id"] not in still


def test_an_operator_watches_a_bot_conversation_read_only_and_live(app, desk: Desk):
    person = person_with_alpha(app, "my screen is black")
    operator = app.test_client()
    log_in(operator)
    conversation_id = conversation_id_of(operator, "Alpha Bot heard: my screen is black")

    view = operator.get(f"/desk/api/conversations/{conversation_id}").get_json()
    assert (view["live"], view["with_bot"], view["host"]["id"]) == (False, True, "alpha")
    assert view["desks"] == [{"id": "human", "title": "Support team"}]
    assert texts(view["messages"]) == ["my screen is black", "Alpha Bot heard: my screen is black"]
    # Replies are for people at a desk only.
    response = operator.post(f"/desk/api/conversations/{conversation_id}/messages", json={"text": "hi"})
    assert response.status_code == 409

    stream = open_test_stream(operator, f"/desk/api/events?conversation={conversation_id}"
                                        f"&after={view['messages'][-1]['id']}")
    say(person, "it is still black")
    seen = stream.messages_until(lambda message: message["role"] == "bot")
    stream.close()
    assert texts(seen) == ["it is still black", "Alpha Bot heard: it is still black"]


def test_taking_over_tells_the_bot_nothing_and_handing_back_resumes_it(app, desk: Desk, bots):
    person = person_with_alpha(app, "I need to change my address")
    operator = app.test_client()
    log_in(operator)
    conversation_id = conversation_id_of(operator, "Alpha Bot heard: I need to change my address")
    heard_before = list(bots["alpha"].messages_from(conversation_id))

    view = take_over(operator, conversation_id)

    assert (view["live"], view["with_bot"], view["host"]["id"]) == (True, False, "human")
    assert view["stay"]["taken_by"] == "alice"
    assert view["stay"]["reason"] == "Taken over by alice from Alpha Bot."
    assert view["stay"]["from_host"]["id"] == "alpha"
    notices = texts(view["messages"], "notice")
    assert notices[-2:] == [
        "You are now talking to Support team.", "alice from Support team joined the conversation.",
    ]
    with store.get_engine(app).connect() as connection:
        code = connection.execute(sa.text("SELECT reason_code FROM switch WHERE conversation_id = :id"),
                                  {"id": conversation_id}).scalar_one()
    assert code == "operator_takeover"

    update = say(person, "hello? who is this?")
    assert update["host"]["id"] == "human"
    app.config["DESK_WAIT"] = 0
    desk_bar = person.get("/api/updates?after=0").get_json()["desk"]
    assert (desk_bar["waiting"], "position" in desk_bar) == (False, False), "the operator is already there"
    session_id = view["stay"]["session_id"]
    customer = [e["data"]["message"] for e in desk.events(session_id) if e["kind"] == "message"]
    assert customer == ["hello? who is this?"]
    reply = {"text": "Alice here, I can help."}
    assert operator.post(f"/desk/api/conversations/{conversation_id}/messages", json=reply).status_code == 200
    assert bots["alpha"].messages_from(conversation_id) == heard_before, "the bot heard nothing while away"

    response = operator.post(
        f"/desk/api/conversations/{conversation_id}/hand-back", json={"host_id": "alpha"}
    )
    assert response.status_code == 200, response.get_json()
    assert say(person, "thanks")["messages"][-1]["text"] == "Alpha Bot heard: thanks"
    assert bots["alpha"].messages_from(conversation_id) == [
        *heard_before, f'/handoff{{"from_host":"{desk.url.replace("127.0.0.1", "localhost")}"}}', "thanks",
    ]


def test_taking_over_needs_a_conversation_with_a_bot_and_a_desk(app, desk: Desk):
    at_desk, _state = test_desk.at_desk(app, "already here")
    operator = app.test_client()
    log_in(operator)
    (stay,) = [s for s in operator.get("/desk/api/queue").get_json()["conversations"]
               if s["reason"] == "already here"]
    person_with_alpha(app, "just chatting")
    chatting = conversation_id_of(operator, "Alpha Bot heard: just chatting")

    for conversation_id, body, status in [
        (stay["conversation_id"], {}, 409),
        (chatting, {"desk_id": "beta"}, 400),
        (chatting, {"desk_id": 7}, 400),
        ("no-such-conversation", {}, 404),
    ]:
        response = operator.post(f"/desk/api/conversations/{conversation_id}/take-over", json=body)
        assert response.status_code == status, (conversation_id, body, response.get_json())
    assert app.test_client().post(f"/desk/api/conversations/{chatting}/take-over", json={}).status_code == 401


def test_notes_reach_other_consoles_and_never_the_person_the_bot_or_the_desk(app, desk: Desk, bots):
    person = person_with_alpha(app, "my card was stolen")
    alice, bob = app.test_client(), app.test_client()
    log_in(alice)
    log_in(bob, "bob", "pw with spaces")
    conversation_id = conversation_id_of(alice, "Alpha Bot heard: my card was stolen")
    person_stream = open_test_stream(person, "/api/events?after=0")
    bob_stream = open_test_stream(bob, f"/desk/api/events?conversation={conversation_id}")
    bob_stream.next("conversation")

    response = alice.post(f"/desk/api/conversations/{conversation_id}/notes", json={"text": "Watch this one"})
    assert response.status_code == 200, response.get_json()
    (note,) = response.get_json()["notes"]
    last_message = response.get_json()["messages"][-1]["id"]
    assert (note["operator"], note["text"]) == ("alice", "Watch this one")
    assert note["after_message_id"] == last_message
    seen = bob_stream.next_where("conversation", lambda state: state["notes"]).data["notes"]
    assert [n["text"] for n in seen] == ["Watch this one"]
    bob_stream.close()

    view = take_over(bob, conversation_id)
    note = {"text": "Taken by bob, calling the bank"}
    assert bob.post(f"/desk/api/conversations/{conversation_id}/notes", json=note).status_code == 200
    say(person, "are you there?")
    seen = person_stream.messages_until(lambda message: message.get("text") == "are you there?")
    person_stream.close()

    session_id = view["stay"]["session_id"]
    everything_elsewhere = [
        str(person.post("/api/conversation").get_json()),
        str(person.get("/api/updates?after=0").get_json()),
        str(seen),
        str(bots["alpha"].received),
        str(desk.events(session_id)),
        str(desk.session(session_id)),
    ]
    for text in ("Watch this one", "Taken by bob"):
        assert not any(text in got for got in everything_elsewhere)
    assert bob.post(f"/desk/api/conversations/{conversation_id}/notes", json={"text": " "}).status_code == 400
