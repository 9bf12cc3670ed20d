"""Serve the chatroom: ``python -m chatroom [--host H] [--port P] [--workers N]``.

gunicorn runs it with gevent workers: a person waiting minutes for a human
holds an open live stream, and a cooperative worker holds thousands of those
without a thread each. Settings come from the environment (chatroom/settings.py).
"""
import os
import sys

from gevent import monkey

if not monkey.is_module_patched("socket"):
    # The package (Flask, requests, ssl) is imported before this module runs, too late to
    # patch; gevent's runner patches first, then runs this module again.
    os.execv(sys.executable, [sys.executable, "-m", "gevent.monkey", "--module", "chatroom", *sys.argv[1:]])

import argparse  # noqa: E402
import logging  # noqa: E402

from gunicorn.app.base import BaseApplication  # noqa: E402
from gunicorn.workers.ggevent import GeventWorker  # noqa: E402

from handoff import longlived  # noqa: E402
from handoff.config import ConfigError, current_config  # noqa: E402

from . import settings  # noqa: E402

# The worker's pid in every line: with several workers, which one served a turn is in the log.
LOG_FORMAT = "%(levelname)s %(name)s [%(process)d]: %(message)s"


class ChatroomWorker(GeventWorker):
    """A gevent worker whose client sockets time out, so a slow client cannot hold one forever."""

    def handle(self, listener, client, addr):
        client.settimeout(self.cfg.chatroom_client_timeout)
        super().handle(listener, client, addr)

    def load_wsgi(self):
        super().load_wsgi()
        longlived.freeze_loaded()


class Server(BaseApplication):
    """gunicorn, configured from our settings instead of its own files and command line."""

    def __init__(self, options: dict, client_timeout: float) -> None:
        self.options = options
        self.client_timeout = client_timeout
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # Read by ChatroomWorker; gunicorn's own timeout is the worker's heartbeat.
        self.cfg.chatroom_client_timeout = self.client_timeout

    def load(self):
        from . import create_app

        return create_app()


def main(argv: list[str] | None = None) -> int:
    try:
        config = settings.load()
    except settings.SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m chatroom", description=__doc__)
    parser.add_argument("--host", default=config["HOST"], help="interface ($CHATROOM_HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, default=config["PORT"], help="port ($CHATROOM_PORT, else 8080)")
    parser.add_argument(
        "--workers", type=int, default=config["WORKERS"], help="worker processes ($CHATROOM_WORKERS, else 1)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if args.workers > 1 and not config["REDIS_URL"]:
        print(
            f"error: CHATROOM_WORKERS={args.workers} needs REDIS_URL, so the workers share turn locks, "
            "limits and live events (set REDIS_URL=redis://127.0.0.1:6379/0, or use one worker)",
            file=sys.stderr,
        )
        return 2
    # Fail here, with the file and the fix, rather than in every worker.
    try:
        current_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = Server({
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": ChatroomWorker,
        "worker_connections": config["MAX_CONNECTIONS"],
        # gunicorn would believe X-Forwarded-Proto from any local peer; CHATROOM_TRUSTED_PROXIES
        # (create_app) alone decides which forwarded headers count.
        "forwarded_allow_ips": "",
        # How long an idle connection waits for its next request, which also bounds how long a
        # client may take to send one's headers. Shorter than the pauses between a person's
        # messages, a client would often reuse a connection just as the worker closes it.
        "keepalive": max(1, round(config["CLIENT_TIMEOUT"])),
        "timeout": 30,
        "graceful_timeout": 5,
        "accesslog": None,
        "loglevel": "warning",
        "proc_name": "chatroom",
    }, client_timeout=config["CLIENT_TIMEOUT"])
    logging.getLogger("chatroom").info(
        "listening on http://%s:%d with %d worker(s)", args.host, args.port, args.workers
    )
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
