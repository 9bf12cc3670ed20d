"""Talk to a ``kind: a2a`` host: an agent that speaks the Agent2Agent protocol (A2A) over JSON-RPC.

The wire mapping, from the chatroom's side:

- **Conversation.** Every turn of a conversation goes to the agent in one A2A
  context, ``context_id_for(url, conversation_id)``: a UUID derived from the
  host's url and the chatroom's conversation id. It is stable across turns,
  handoffs away and back, and chatroom restarts; it differs per host; and it is
  not the conversation id itself, which stays the chatroom's.
- **Turn.** One blocking ``SendMessage`` call (A2A 1.0; ``message/send`` for
  agents whose card says 0.3 or older) with a user Message: one text part
  holding the person's text and a new messageId. If the agent's last answer in
  this context was a task waiting for input, the turn continues that task
  (its taskId goes along).
- **Arrival.** The text is the arrival message
  ``/handoff{"from_host":"<url of the host left>"}``, exactly as Rasa hosts get
  it. When the chatroom has a handoff envelope (reason, summary, slots,
  from_host, conversation_id, language) it rides along as a data part of the
  same message. An arrival never continues an open task.
- **Replies.** The parts of the agent's Message, or of a Task's status message
  followed by its artifacts, in order: a text part becomes ``{"text": …}``, a
  url part ``{"image": url}`` when its media type is an image, else
  ``{"text": url}``. A data part holding ``handoff_host`` or ``handoff_to`` is
  the agent's handoff request, with the keys of the Rasa custom payload
  (``handoff_host``, ``title``, ``handoff_to``, ``reason``, and any envelope
  keys); it is returned apart so the chatroom checks it against
  handoff_config.yml like any payload. Other data parts and raw bytes are not shown.
- **Endpoint.** The agent card is read from ``{url}/.well-known/agent-card.json``
  (``agent.json`` for older agents) and kept until a turn fails. Its JSON-RPC
  interface gives the protocol version and the endpoint's path; the path is
  used on the scheme, host and port of the configured url, so the chatroom
  never connects anywhere handoff_config.yml does not name (agents often
  announce the address they bind, such as 0.0.0.0, or a public name).
- **Failures.** A refused connection, a timeout, any status but 200 (redirects
  included: they are never followed), a body that is not a JSON-RPC response,
  a JSON-RPC error, or an answer with nothing to show raise ``A2AHostError``;
  the card is read again on the next turn. The caller gives the timeout (the
  time left in the turn); it bounds the whole turn, card included.

The SDK's own client is asyncio-only while the chatroom is synchronous
(threads, or gevent greenlets), so turns go over ``requests`` here; the
requests and answers are built and read with the SDK's types, its card parser
and its 0.3 conversions, so the bytes are those its JSON-RPC transports send.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from a2a.client.card_resolver import parse_agent_card
from a2a.compat.v0_3 import conversions
from a2a.compat.v0_3 import types as types_v03
from a2a.types import AgentCard, Message, Part, Role, SendMessageRequest, SendMessageResponse, TaskState
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0, VERSION_HEADER
from google.protobuf import json_format
from pydantic import ValidationError

from handoff.config import normalize_url
from handoff.payload import ARRIVAL_INTENT, CUSTOM, HANDOFF_HOST, HANDOFF_TO

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
JSONRPC_BINDING = "JSONRPC"
# The chatroom's own namespace for context ids; changing it would start every A2A conversation afresh.
CONTEXT_NAMESPACE = uuid.UUID("6f1d2c0e-7a52-4b8e-9a36-2b1f0c9d4e11")
# An answer larger than this is refused rather than read into memory.
MAX_BODY_BYTES = 1 << 20
# How many conversations' open tasks are kept (the oldest are forgotten first).
MAX_OPEN_TASKS = 10_000
# What a read that ran out of time looks like under requests' wrappers.
TIMEOUTS = (TimeoutError, urllib3.exceptions.TimeoutError)
WAITING_STATES = frozenset({TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED})


class A2AHostError(Exception):
    """An A2A host did not answer usably; the message says where and what went wrong."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to send turns to one agent, as learned from its card."""

    url: str
    protocol: str

    @property
    def legacy(self) -> bool:
        """Tell whether the agent speaks the 0.3-era methods (``message/send``)."""
        return self.protocol != PROTOCOL_VERSION_1_0


@dataclass(frozen=True)
class A2AReply:
    """What an agent answered to one turn."""

    messages: list[dict[str, str]]
    handoff: dict[str, Any] | None
    context_id: str
    # The task the agent waits on for the person's next message, if any.
    task_id: str | None = None

    def rest_messages(self) -> list[dict[str, Any]]:
        """Return the reply shaped like a Rasa REST answer: the messages, then ``{"custom": handoff}``."""
        if self.handoff is None:
            return list(self.messages)
        return [*self.messages, {CUSTOM: self.handoff}]


def context_id_for(url: str, conversation_id: str) -> str:
    """Return the A2A context id that carries a conversation at the host ``url``."""
    return str(uuid.uuid5(CONTEXT_NAMESPACE, f"{normalize_url(url) or url} {conversation_id}"))


def is_arrival(text: str) -> bool:
    """Tell whether a text is the chatroom's arrival message."""
    return text.startswith(f"/{ARRIVAL_INTENT}{{")


class A2AClient:
    """Send a person's turns to A2A agents; one instance serves every host and thread."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session if session is not None else requests.Session()
        self._lock = threading.Lock()
        self._endpoints: dict[str, Endpoint] = {}
        self._open_tasks: OrderedDict[str, str] = OrderedDict()

    def send(
        self, url: str, conversation_id: str, text: str, *,
        timeout: float, envelope: dict[str, Any] | None = None,
    ) -> A2AReply:
        """Send one turn to the agent at ``url`` and return its answer, or raise A2AHostError.

        ``envelope`` is the handoff envelope to pass with an arrival message.
        """
        deadline = time.monotonic() + timeout
        context_id = context_id_for(url, conversation_id)
        arrival = envelope is not None or is_arrival(text)
        with self._lock:
            task_id = None if arrival else self._open_tasks.get(context_id)
        message = user_message(text, context_id, task_id, envelope)
        try:
            endpoint = self.endpoint(url, deadline)
            reply = read_reply(endpoint.url, self.send_message(endpoint, message, deadline))
        except A2AHostError:
            with self._lock:
                self._endpoints.pop(url, None)
                self._open_tasks.pop(context_id, None)
            raise
        with self._lock:
            self._open_tasks.pop(context_id, None)
            if reply.task_id is not None:
                self._open_tasks[context_id] = reply.task_id
                while len(self._open_tasks) > MAX_OPEN_TASKS:
                    self._open_tasks.popitem(last=False)
        return reply

    def endpoint(self, url: str, deadline: float) -> Endpoint:
        """Return the agent's JSON-RPC endpoint, reading its card unless it is known."""
        with self._lock:
            known = self._endpoints.get(url)
        if known is not None:
            return known
        endpoint = endpoint_from_card(url, self.read_card(url, deadline))
        with self._lock:
            self._endpoints[url] = endpoint
        return endpoint

    def read_card(self, url: str, deadline: float) -> AgentCard:
        """Fetch and parse the agent card of the agent at ``url``."""
        base = url.rstrip("/")
        for path in CARD_PATHS:
            card_url = base + path
            status, body = self.http("GET", card_url, deadline)
            if status != 404:
                break
        expect_ok(card_url, status)
        try:
            return parse_agent_card(parse_json(card_url, body))
        except (json_format.ParseError, AttributeError, TypeError, ValueError) as exc:
            raise A2AHostError(f"{card_url}: not a valid agent card ({exc})") from None

    def send_message(self, endpoint: Endpoint, message: Message, deadline: float) -> SendMessageResponse:
        """Make the JSON-RPC call for one message and return the agent's answer as the SDK's type."""
        request = SendMessageRequest(message=message)
        if endpoint.legacy:
            method = "message/send"
            params = conversions.to_compat_send_message_request(request, request_id=0).params.model_dump(
                by_alias=True, exclude_none=True, mode="json"
            )
            headers = {VERSION_HEADER: PROTOCOL_VERSION_0_3}
        else:
            method = "SendMessage"
            params = json_format.MessageToDict(request)
            headers = {VERSION_HEADER: PROTOCOL_VERSION_1_0}
        call = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": method, "params": params}
        status, body = self.http("POST", endpoint.url, deadline, json_body=call, headers=headers)
        expect_ok(endpoint.url, status)
        result = jsonrpc_result(endpoint.url, parse_json(endpoint.url, body))
        if endpoint.legacy:
            return legacy_response(endpoint.url, result)
        try:
            return json_format.ParseDict(result, SendMessageResponse(), ignore_unknown_fields=True)
        except (json_format.ParseError, AttributeError, TypeError, ValueError) as exc:
            raise A2AHostError(f"{endpoint.url}: result is not a message or a task ({exc})") from None

    def http(
        self, method: str, url: str, deadline: float, *,
        json_body: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Make one request within the deadline, never following a redirect; return status and body."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise A2AHostError(f"{url}: no time left in the turn for this request")
        try:
            with self.session.request(
                method, url, json=json_body, headers=headers, timeout=left,
                allow_redirects=False, stream=True,
            ) as response:
                if response.status_code != 200:
                    return response.status_code, b""
                return 200, read_body(url, response, deadline)
        except requests.RequestException as exc:
            raise A2AHostError(f"{url}: {describe_failure(exc, left)}") from None


def user_message(text: str, context_id: str, task_id: str | None, envelope: dict[str, Any] | None) -> Message:
    """Return the user Message for one turn: the text, then the envelope as a data part if any."""
    message = Message(
        role=Role.ROLE_USER, message_id=str(uuid.uuid4()), context_id=context_id, parts=[Part(text=text)]
    )
    if task_id:
        message.task_id = task_id
    if envelope is not None:
        part = message.parts.add()
        json_format.ParseDict(envelope, part.data)
    return message


def endpoint_from_card(url: str, card: AgentCard) -> Endpoint:
    """Return the endpoint for ``url`` from its card: JSON-RPC, 1.0 preferred, on the configured origin."""
    interfaces = [i for i in card.supported_interfaces if i.protocol_binding.upper() == JSONRPC_BINDING]
    if not interfaces:
        offered = ", ".join(sorted({i.protocol_binding for i in card.supported_interfaces})) or "none"
        raise A2AHostError(
            f"{url}: the agent card offers no JSON-RPC interface (offers: {offered}); "
            "the chatroom speaks A2A over JSON-RPC"
        )
    chosen = next((i for i in interfaces if is_version_1_0(i.protocol_version)), interfaces[0])
    protocol = PROTOCOL_VERSION_1_0 if is_version_1_0(chosen.protocol_version) else PROTOCOL_VERSION_0_3
    configured = urlsplit(url)
    path = urlsplit(chosen.url).path or "/"
    return Endpoint(url=f"{configured.scheme}://{configured.netloc}{path}", protocol=protocol)


def is_version_1_0(version: str) -> bool:
    """Tell whether an interface's protocol version is 1.0 (a missing version counts as current)."""
    return not version or version.split(".")[:2] == ["1", "0"]


def expect_ok(url: str, status: int) -> None:
    if status == 200:
        return
    if 300 <= status < 400:
        raise A2AHostError(
            f"{url}: answered HTTP {status}, a redirect, which is never followed "
            "(set the host's url in handoff_config.yml to where the agent really answers)"
        )
    raise A2AHostError(f"{url}: answered HTTP {status}")


def read_body(url: str, response: requests.Response, deadline: float) -> bytes:
    """Read a response body, refusing one that is too large or still arriving at the deadline."""
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise A2AHostError(f"{url}: answer larger than {MAX_BODY_BYTES} bytes")
        if time.monotonic() > deadline:
            raise A2AHostError(f"{url}: answer still arriving when the turn's time ran out")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(url: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise A2AHostError(f"{url}: answer is not JSON") from None


def jsonrpc_result(url: str, data: Any) -> Any:
    """Return the result of a JSON-RPC response, or raise for an error or anything malformed."""
    if not isinstance(data, dict):
        raise A2AHostError(f"{url}: answer is not a JSON-RPC response object")
    error = data.get("error")
    if error is not None:
        if isinstance(error, dict):
            raise A2AHostError(f"{url}: JSON-RPC error {error.get('code')}: {error.get('message')}")
        raise A2AHostError(f"{url}: JSON-RPC error {error!r}")
    if "result" not in data:
        raise A2AHostError(f"{url}: JSON-RPC response has neither a result nor an error")
    return data["result"]


def legacy_response(url: str, result: Any) -> SendMessageResponse:
    """Return a 0.3-era ``message/send`` result (a message or a task) as the SDK's current type."""
    if not isinstance(result, dict):
        raise A2AHostError(f"{url}: result is not a message or a task")
    kind = result.get("kind") or ("message" if "messageId" in result else "task" if "id" in result else None)
    try:
        if kind == "message":
            message = conversions.to_core_message(types_v03.Message.model_validate(result))
            return SendMessageResponse(message=message)
        if kind == "task":
            task = conversions.to_core_task(types_v03.Task.model_validate(result))
            return SendMessageResponse(task=task)
    except (ValidationError, TypeError, ValueError) as exc:
        raise A2AHostError(f"{url}: result is not a valid {kind} ({exc.__class__.__name__})") from None
    raise A2AHostError(f"{url}: result is not a message or a task (kind {kind!r})")


def read_reply(url: str, response: SendMessageResponse) -> A2AReply:
    """Return what an agent's answer shows the person, its handoff request and any task it waits on."""
    which = response.WhichOneof("payload")
    if which == "message":
        parts = list(response.message.parts)
        context_id, task_id, state = response.message.context_id, None, None
    elif which == "task":
        task = response.task
        state = task.status.state
        parts = list(task.status.message.parts) if task.status.HasField("message") else []
        for artifact in task.artifacts:
            parts.extend(artifact.parts)
        context_id = task.context_id
        task_id = task.id if state in WAITING_STATES else None
    else:
        raise A2AHostError(f"{url}: the agent answered neither a message nor a task")
    messages, handoff = render_parts(parts)
    if not messages and handoff is None:
        what = f"a task in state {TaskState.Name(state)}" if state is not None else "a message"
        raise A2AHostError(f"{url}: the agent answered {what} with nothing to show")
    return A2AReply(messages=messages, handoff=handoff, context_id=context_id, task_id=task_id)


def render_parts(parts: list[Part]) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
    """Return the display messages of some parts and the first handoff request among them."""
    messages: list[dict[str, str]] = []
    handoff = None
    for part in parts:
        content = part.WhichOneof("content")
        if content == "text" and part.text.strip():
            messages.append({"text": part.text})
        elif content == "url" and part.url:
            key = "image" if part.media_type.startswith("image/") else "text"
            messages.append({key: part.url})
        elif content == "data" and handoff is None:
            data = json_format.MessageToDict(part.data)
            if isinstance(data, dict) and (HANDOFF_HOST in data or HANDOFF_TO in data):
                handoff = data
    return messages, handoff


def failure_chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield an exception and those it wraps (requests wraps urllib3, which wraps the socket's)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def describe_failure(exc: requests.RequestException, budget: float) -> str:
    """Say in a few words why a request failed."""
    chain = list(failure_chain(exc))
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused (is the agent running?)"
    if isinstance(exc, requests.Timeout) or any(isinstance(e, TIMEOUTS) for e in chain):
        return f"no answer within {budget:.1f} s"
    return f"request failed ({type(exc).__name__})"
