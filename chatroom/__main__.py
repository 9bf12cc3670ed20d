"""Serve the chatroom with waitress: ``python -m chatroom [--host H] [--port P]``."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from handoff.config import ConfigError

DEFAULT_PORT = 8080


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatroom", description=__doc__)
    parser.add_argument(
        "--host", default=os.environ.get("CHATROOM_HOST", "127.0.0.1"),
        help="interface to listen on (default 127.0.0.1; $CHATROOM_HOST)",
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("CHATROOM_PORT", DEFAULT_PORT)),
        help=f"port to listen on (default {DEFAULT_PORT}; $CHATROOM_PORT)",
    )
    # Each person at a human desk holds a thread in a long poll, so there are plenty.
    parser.add_argument("--threads", type=int, default=64, help="worker threads (default 64)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from waitress import serve

    from . import create_app

    try:
        app = create_app()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("chatroom").info("listening on http://%s:%d", args.host, args.port)
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="chatroom")
    return 0


if __name__ == "__main__":
    sys.exit(main())
