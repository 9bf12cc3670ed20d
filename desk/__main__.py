"""Start the human desk: ``python -m desk [--host-id human]``.

The port comes from the host's url in handoff_config.yml; the server binds to
127.0.0.1. Sessions, customers and variables are kept in SQLite under
$HANDOFF_STATE_DIR/desk/<host id>/, or in PostgreSQL when $DATABASE_URL names one.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from handoff.config import HOST_ID_ENV, ConfigError, load_config, state_dir

from .policy import TOKEN_ENV

TOOL_PORT_ENV = "DESK_TOOL_PORT"
# Parlant also opens a tool-service port; by default 18 above the desk (8800 -> 8818, Parlant's own pair).
TOOL_PORT_OFFSET = 18


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desk", description=__doc__)
    parser.add_argument(
        "--host-id", default=os.environ.get(HOST_ID_ENV) or None,
        help="the desk's host id in handoff_config.yml "
        "(default $HANDOFF_HOST_ID, else the first kind: parlant host)",
    )
    args = parser.parse_args(argv)
    # Parlant prints its own log; only the desk's lines go through logging.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("desk").setLevel(logging.INFO)
    logging.getLogger("parlant").propagate = False
    try:
        config = load_config()
        if args.host_id:
            host = config.get_host(args.host_id)
        else:
            host = next((h for h in config.hosts if h.kind == "parlant"), None)
            if host is None:
                raise ConfigError(f"{config.path}: no host has kind: parlant (add one, e.g. human)")
        if host.kind != "parlant":
            raise ConfigError(
                f"{config.path}: host '{host.id}' has kind '{host.kind}' (the desk serves kind: parlant)"
            )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    token = os.environ.get(TOKEN_ENV, "")
    if len(token) < 16:
        print(f"error: ${TOKEN_ENV} is not set or shorter than 16 characters "
              "(`make run` generates one and gives it to the chatroom too)", file=sys.stderr)
        return 2

    home = state_dir() / "desk" / host.id
    home.mkdir(parents=True, exist_ok=True)
    # Parlant reads its home folder when first imported, so this comes before any parlant import.
    os.environ["PARLANT_HOME"] = str(home)
    import sqlalchemy as sa

    from .server import serve
    from .store import DATABASE_URL_ENV, StoreError, engine_url

    try:
        database = engine_url(os.environ.get(DATABASE_URL_ENV), home)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tool_port = int(os.environ.get(TOOL_PORT_ENV) or host.port + TOOL_PORT_OFFSET)
    try:
        asyncio.run(serve(host, home, token, tool_port, database))
    except KeyboardInterrupt:
        pass
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        print(f"error: the desk's database {database.render_as_string(hide_password=True)} "
              f"is unusable ({exc.orig}); start it or fix ${DATABASE_URL_ENV}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
