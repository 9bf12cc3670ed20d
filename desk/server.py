"""The desk's Parlant server: one agent for the human team, sessions always in manual mode."""
from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path

import parlant.sdk as p
import sqlalchemy as sa
from fastapi import FastAPI
from lagom import Container
from parlant.api.authorization import AuthorizationPolicy
from parlant.core.common import IdGenerator
from parlant.core.context_variables import ContextVariableDocumentStore
from parlant.core.customers import CustomerDocumentStore
from parlant.core.sessions import SessionListener

from handoff.config import Host

from .nlp import MARKER_NAME, OfflineNLPService
from .policy import TokenAuthorizationPolicy
from .sessions import DeskSessionStore, NotifyingSessionListener, SessionSignals
from .store import SQLDocumentDatabase, create_engine, sql_name

logger = logging.getLogger("desk")

# A fixed id: Parlant keeps agents in memory in SDK mode, and stored sessions name their agent.
AGENT_ID = "support_team"
AGENT_DESCRIPTION = (
    "Stands for the human Tier-2 support team. Every session is in manual mode: "
    "operators write every reply; this agent never generates one."
)


async def serve(host: Host, home: Path, token: str, tool_port: int, database: sa.URL) -> None:
    """Run the desk until interrupted, its sessions, customers and variables in ``database``."""
    marker = home / MARKER_NAME
    policy = TokenAuthorizationPolicy(token)
    engine = create_engine(database)

    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)

        async def tables(store: str, json_file: str) -> SQLDocumentDatabase:
            # Several desks may share one PostgreSQL database: each keeps its own tables.
            prefix = sql_name("parlant", host.id, store)
            database = await stack.enter_async_context(SQLDocumentDatabase(engine, prefix))
            # What an older desk kept in Parlant's JSON files comes along on the first start.
            await database.import_json_file(home / json_file)
            return database

        sessions = await stack.enter_async_context(
            DeskSessionStore(await tables("sessions", "sessions.json"), SessionSignals())
        )
        customers = await stack.enter_async_context(
            CustomerDocumentStore(IdGenerator(), await tables("customers", "customers.json"))
        )
        variables = await stack.enter_async_context(
            ContextVariableDocumentStore(IdGenerator(), await tables("variables", "context_variables.json"))
        )

        async def configure_container(container: Container) -> Container:
            container[AuthorizationPolicy] = policy
            container[SessionListener] = NotifyingSessionListener(sessions)
            return container

        async def configure_api(app: FastAPI) -> None:
            policy.require_token(app)

        server = await stack.enter_async_context(
            p.Server(
                host="127.0.0.1",
                port=host.port,
                tool_service_port=tool_port,
                nlp_service=lambda _container: OfflineNLPService(marker),
                session_store=sessions,
                customer_store=customers,
                variable_store=variables,
                configure_container=configure_container,
                configure_api=configure_api,
            )
        )
        if await server.find_agent(id=AGENT_ID) is None:
            await server.create_agent(id=AGENT_ID, name=host.title, description=AGENT_DESCRIPTION)
        logger.info(
            "desk %s (%s) on http://127.0.0.1:%d, sessions in %s",
            host.id, host.title, host.port, database.render_as_string(hide_password=True),
        )
