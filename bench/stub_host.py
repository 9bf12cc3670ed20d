"""An instant host: answers Rasa's REST channel at once, so what is left to measure is the chatroom.

Run: .venv/bin/python -m bench.stub_host --port 5099
POST /webhooks/rest/webhook {"sender": ..., "message": ...} is answered with one
text message naming what was received; GET / and /status answer 200.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from handoff.config import REPO_ROOT
from tests.stack import free_port


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the chatroom's pooled client expects of a real bot.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write with no delay: split, they meet the
    # client's delayed ACK and every answer would take 40 ms.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def answer(self, body: object, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server looks for
        self.answer({"status": "ok"})

    def do_POST(self) -> None:  # noqa: N802 - the name http.server looks for
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.answer({"error": "not JSON"}, 400)
            return
        if self.path != "/webhooks/rest/webhook":
            self.answer({"error": f"no such path {self.path}"}, 404)
            return
        self.answer([{"recipient_id": body.get("sender"), "text": f"you said {body.get('message')!s:.40}"}])

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: a line per request would cost more than the answer."""


@contextmanager
def stub_host() -> Iterator[str]:
    """Run the stub in its own process on a free port; yield its url."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.stub_host", "--port", str(port)], cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the stub host did not start on port {port}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
