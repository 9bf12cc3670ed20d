"""Who may do what on the desk's Parlant API.

Parlant's development policy allows everything to anyone, and its production
policy lets anonymous callers open sessions and post customer messages. The
desk has exactly one client, the chatroom, so:

* without ``Authorization: Bearer $DESK_API_TOKEN`` only ``GET /healthz``
  answers (the launcher's readiness check); everything else is 401, including
  Parlant's sandbox UI and API docs;
* with the token, the operations the chatroom needs: read agents and
  customers; create, read, list and update sessions (mode, title, metadata);
  post customer, human-agent, human-agent-on-behalf-of-AI-agent, custom and
  status events; list and read events;
* nobody, token or not, may change the agent's setup (agents, guidelines,
  journeys, tools, glossary, canned responses, variables, tags), delete
  sessions or events, or ask the AI agent to speak (``create_agent_event``).

No CORS headers are sent: no browser is meant to call the desk directly.
No rate limits: the desk listens on loopback for one trusted client.
"""
from __future__ import annotations

import hmac

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from parlant.api.authorization import AuthorizationPolicy, Operation

TOKEN_ENV = "DESK_API_TOKEN"
PUBLIC_PATHS = frozenset({"/healthz"})

ALLOWED_WITH_TOKEN = frozenset({
    Operation.READ_AGENT,
    Operation.LIST_AGENTS,
    Operation.READ_CUSTOMER,
    Operation.CREATE_GUEST_SESSION,
    Operation.CREATE_CUSTOMER_SESSION,
    Operation.READ_SESSION,
    Operation.LIST_SESSIONS,
    Operation.UPDATE_SESSION,
    Operation.CREATE_CUSTOMER_EVENT,
    Operation.OVERRIDE_CUSTOMER_PARTICIPANT,
    Operation.CREATE_HUMAN_AGENT_EVENT,
    Operation.CREATE_HUMAN_AGENT_ON_BEHALF_OF_AI_AGENT_EVENT,
    Operation.CREATE_CUSTOM_EVENT,
    Operation.CREATE_STATUS_EVENT,
    Operation.LIST_EVENTS,
    Operation.READ_EVENT,
})


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class TokenAuthorizationPolicy(AuthorizationPolicy):
    """Allow the chatroom's operations to callers holding the desk token; nothing to others."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ValueError(f"${TOKEN_ENV} must be at least 16 characters (the launcher generates one)")
        self._token = token.encode()

    def holds_token(self, request: Request) -> bool:
        return hmac.compare_digest(bearer_token(request).encode(), self._token)

    async def configure_app(self, app: FastAPI) -> FastAPI:
        # Parlant's policies add permissive CORS here; the desk adds none.
        return app

    def require_token(self, app: FastAPI) -> None:
        """Answer 401 to any request without the token, before Parlant's own middleware runs.

        Installed last (so outermost): unrouted paths such as the sandbox UI and
        the API docs are closed too, with a 401 rather than Parlant's 500.
        """
        @app.middleware("http")
        async def require_token(request: Request, call_next):
            if request.url.path in PUBLIC_PATHS or self.holds_token(request):
                return await call_next(request)
            return JSONResponse(
                {"detail": f"send Authorization: Bearer ${TOKEN_ENV}"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def check_permission(self, request: Request, operation: Operation) -> bool:
        if operation in ALLOWED_WITH_TOKEN and self.holds_token(request):
            return True
        # Raised here rather than returned: Parlant's own refusal echoes the request headers, token included.
        raise HTTPException(status_code=403, detail=f"the desk does not allow {operation.value}")

    async def check_rate_limit(self, request: Request, operation: Operation) -> bool:
        return True

    @property
    def name(self) -> str:
        return "desk-token"
