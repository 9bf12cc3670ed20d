"""The desk's Parlant server: one agent for the human team, sessions always in manual mode."""
from __future__ import annotations

import logging
from pathlib import Path

import parlant.sdk as p
from fastapi import FastAPI
from lagom import Container
from parlant.api.authorization import AuthorizationPolicy
from parlant.core.sessions import SessionStore

from handoff.config import Host

from .nlp import MARKER_NAME, OfflineNLPService
from .policy import TokenAuthorizationPolicy

logger = logging.getLogger("desk")

# A fixed id: Parlant keeps agents in memory in SDK mode, and stored sessions name their agent.
AGENT_ID = "support_team"
AGENT_DESCRIPTION = (
    "Stands for the human Tier-2 support team. Every session is in manual mode: "
    "operators write every reply; this agent never generates one."
)


def force_manual_mode(store: SessionStore) -> None:
    """Make every session manual from its first moment, whatever a caller asks for.

    Creating a session and then switching it to manual would leave a window in
    which a customer message starts generation.
    """
    create_session = store.create_session
    update_session = store.update_session

    async def create_manual_session(*args, **kwargs):
        kwargs["mode"] = "manual"
        return await create_session(*args, **kwargs)

    async def update_keeping_manual(session_id, params, *args, **kwargs):
        if params.get("mode", "manual") != "manual":
            logger.warning("session %s: refused switching to mode %r", session_id, params["mode"])
            params = {**params, "mode": "manual"}
        return await update_session(session_id, params, *args, **kwargs)

    store.create_session = create_manual_session  # type: ignore[method-assign]
    store.update_session = update_keeping_manual  # type: ignore[method-assign]


async def serve(host: Host, home: Path, token: str, tool_port: int) -> None:
    """Run the desk until interrupted."""
    marker = home / MARKER_NAME

    policy = TokenAuthorizationPolicy(token)

    async def configure_container(container: Container) -> Container:
        container[AuthorizationPolicy] = policy
        return container

    async def configure_api(app: FastAPI) -> None:
        policy.require_token(app)

    async def initialize_container(container: Container) -> None:
        force_manual_mode(container[SessionStore])

    async with p.Server(
        host="127.0.0.1",
        port=host.port,
        tool_service_port=tool_port,
        nlp_service=lambda _container: OfflineNLPService(marker),
        session_store="local",
        customer_store="local",
        variable_store="local",
        configure_container=configure_container,
        initialize_container=initialize_container,
        configure_api=configure_api,
    ) as server:
        if await server.find_agent(id=AGENT_ID) is None:
            await server.create_agent(id=AGENT_ID, name=host.title, description=AGENT_DESCRIPTION)
        logger.info("desk %s (%s) on http://127.0.0.1:%d, state in %s", host.id, host.title, host.port, home)
