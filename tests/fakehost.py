"""A scripted host that speaks Rasa's REST channel, for driving the chatroom into edge cases.

Any endpoint that speaks the contract is a valid ``kind: rasa`` host; this one
records what it receives and hands off on command, including to places that do
not exist, which no well-behaved bot would do.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from handoff.payload import ARRIVAL_INTENT, handoff_payload

HAND_TO_URL = "hand me to url "
HAND_TO_ID = "hand me to id "
# Followed by a JSON object: the custom payload itself (handoff_to, reason, summary, ...).
HAND_WITH = "hand me with "
SLEEP = "sleep "
FAIL = "fail with "
SILENT = "say nothing"


@dataclass
class FakeHost:
    title: str
    received: list[tuple[str, str]] = field(default_factory=list)
    # The REST metadata that came with each message (None when there was none).
    metadata: list[dict | None] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://127.0.0.1:{port}"

    def messages_from(self, sender: str) -> list[str]:
        return [message for who, message in self.received if who == sender]

    def reply(self, sender: str, message: str) -> list[dict] | int:
        """Return the messages to answer with, or an HTTP status to fail with."""
        self.received.append((sender, message))
        if message.startswith(SLEEP):
            time.sleep(float(message[len(SLEEP):]))
        if message.startswith(FAIL):
            return int(message[len(FAIL):])
        if message == SILENT:
            return []
        if message.startswith(f"/{ARRIVAL_INTENT}"):
            return [{"recipient_id": sender, "text": f"Hello, this is {self.title}."}]
        if message.startswith(HAND_TO_URL):
            target = message[len(HAND_TO_URL):]
            return [{"recipient_id": sender, "custom": handoff_payload(target, "Somewhere")}]
        if message.startswith(HAND_WITH):
            return [{"recipient_id": sender, "custom": json.loads(message[len(HAND_WITH):])}]
        if message.startswith(HAND_TO_ID):
            return [{"recipient_id": sender, "custom": {"handoff_to": message[len(HAND_TO_ID):]}}]
        return [{"recipient_id": sender, "text": f"{self.title} heard: {message}"}]

    def start(self, port: int = 0) -> FakeHost:
        """Serve on ``port`` of the loopback (0: any free one)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                fake.metadata.append(body.get("metadata"))
                reply = fake.reply(body["sender"], body["message"])
                if isinstance(reply, int):
                    self.send_error(reply)
                    return
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle(self) -> None:
                # A client that gave up (a turn past its timeout) closed the connection: nothing to report.
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
