"""One turn at a time per conversation: concurrent messages arrive in order, none lost or doubled."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fakehost import HAND_TO_ID
from tests.stack import Stack
from tests.test_chatroom import app, hosts  # noqa: F401 (fixtures)

MESSAGES = [f"message number {i}" for i in range(20)]


def post_all_at_once(post, texts: list[str]) -> list[int]:
    start = threading.Barrier(len(texts))

    def send(text: str) -> int:
        start.wait()
        return post(text)

    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        return list(pool.map(send, texts))


def test_twenty_concurrent_messages_reach_the_host_in_transcript_order(app, hosts):  # noqa: F811
    first = app.test_client()
    first.post("/api/conversation")
    cookie = first.get_cookie("chatroom").value

    def post(text: str) -> int:
        client = app.test_client()
        client.set_cookie("chatroom", cookie)
        return client.post("/api/messages", json={"text": text}).status_code

    assert post_all_at_once(post, MESSAGES) == [200] * 20
    received = [text for _, text in hosts["alpha"].received]
    assert sorted(received) == sorted(MESSAGES), "none lost, none doubled"
    transcript = first.post("/api/conversation").get_json()["messages"]
    assert [m["text"] for m in transcript if m["role"] == "user"] == received


def test_message_sent_during_a_handoff_reaches_the_new_host_after_its_greeting(app, hosts):  # noqa: F811
    beta = hosts["beta"]
    slow_reply = beta.reply

    def slow_greeting(sender, message):
        if message.startswith("/handoff"):
            time.sleep(0.6)
        return slow_reply(sender, message)

    beta.reply = slow_greeting
    client = app.test_client()
    client.post("/api/conversation")
    cookie = client.get_cookie("chatroom").value
    during = app.test_client()
    during.set_cookie("chatroom", cookie)

    request = {"json": {"text": f"{HAND_TO_ID}beta"}}
    handoff = threading.Thread(target=client.post, args=("/api/messages",), kwargs=request)
    handoff.start()
    time.sleep(0.2)
    assert during.post("/api/messages", json={"text": "are you there?"}).status_code == 200
    handoff.join()

    assert [text for _, text in hosts["alpha"].received] == [f"{HAND_TO_ID}beta"]
    assert [text for _, text in beta.received][1:] == ["are you there?"]
    transcript = [m["text"] for m in client.post("/api/conversation").get_json()["messages"]]
    assert transcript.index("Hello, this is Beta Bot.") < transcript.index("are you there?")


@pytest.mark.stack
@pytest.mark.both_settings
def test_twenty_concurrent_messages_reach_a_real_bot_in_order(stack: Stack):
    person = stack.person()
    person.start()
    url = f"{person.chatroom_url}/api/messages"

    def post(text: str) -> int:
        return person.http.post(url, json={"text": text}, timeout=60).status_code

    assert post_all_at_once(post, MESSAGES) == [200] * 20
    received = stack.user_texts("helpdesk", person.conversation_id)
    assert sorted(received) == sorted(MESSAGES)
    transcript = person.start()["messages"]
    assert [m["text"] for m in transcript if m["role"] == "user"] == received
