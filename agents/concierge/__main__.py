"""Start the concierge, an A2A agent: ``python -m agents.concierge [--port N] [--host-id concierge]``.

It listens on 127.0.0.1 at the port of its host's url in handoff_config.yml
(``kind: a2a``), or at ``--port``. Its card is at /.well-known/agent-card.json,
its JSON-RPC endpoint at /. Ctrl-C or SIGTERM stops it.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn

from handoff.config import HOST_ID_ENV, ConfigError, load_config

from .answers import Concierge
from .server import PROTOCOLS, create_app

DEFAULT_HOST_ID = "concierge"
DEFAULT_MONEY_HOST_ID = "financial"
LISTEN_ON = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.concierge", description=__doc__)
    parser.add_argument(
        "--host-id", default=os.environ.get(HOST_ID_ENV) or DEFAULT_HOST_ID,
        help=f"its host id in handoff_config.yml (default $HANDOFF_HOST_ID, else {DEFAULT_HOST_ID})",
    )
    parser.add_argument("--port", type=int, help="port to listen on (default: the port of its host's url)")
    parser.add_argument(
        "--money-host", default=DEFAULT_MONEY_HOST_ID,
        help=f"id of the host that money, bank and card questions go to (default {DEFAULT_MONEY_HOST_ID})",
    )
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, default=PROTOCOLS[0],
        help="A2A protocol version its card offers (the endpoint answers both)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config()
        host = config.find_host(args.host_id)
        if host is not None and host.kind != "a2a":
            raise ConfigError(
                f"{config.path}: host '{host.id}' has kind '{host.kind}' (the concierge serves kind: a2a)"
            )
        port = args.port or (host.port if host is not None else None)
        if port is None:
            raise ConfigError(
                f"{config.path}: no host '{args.host_id}' to take a port from "
                "(add it with kind: a2a, or pass --port)"
            )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    concierge = Concierge(host_id=args.host_id, money_host_id=args.money_host, config_path=config.path)
    app = create_app(concierge, f"http://{LISTEN_ON}:{port}/", args.protocol)
    uvicorn.run(app, host=LISTEN_ON, port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
