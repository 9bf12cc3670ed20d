"""Start Rasa or a bot's action server the way the launcher wants them: private, quiet and quick.

``.venv-rasa/bin/python -m handoff.rasa_entry run|train ARGS`` takes ``rasa run``'s
or ``rasa train``'s arguments; ``... actions ARGS`` takes ``rasa run actions``'.
Compared with the ``rasa`` command it:

* reads the HTTP API token from ``$RASA_API_TOKEN``: a command line is visible
  to every user in ``ps``, a process's environment only to its owner;
* points the bot at the action server in ``$ACTION_SERVER_URL`` when it is set,
  through a copy of endpoints.yml under the state folder with that url (Rasa's
  own ``${VAR}`` substitution would make the file unusable without the variable);
* turns Rasa's telemetry off;
* silences third-party deprecation warnings where they are raised. Sanic turns
  DeprecationWarning back on ("once") when it is imported, and Rasa puts a
  "once" filter for UserWarning first when it starts (pyparsing's deprecations
  are both), so the filters go in again after each;
* leaves TensorFlow out when the model uses no component that needs it (the
  sparse pipelines of our bots): its import is most of Rasa's start-up. Any
  other model gets the real TensorFlow;
* imports skops before everything else when the model needs it: at import time
  skops looks every numpy ufunc up in every loaded module, which takes seconds
  once Rasa has loaded thousands.

``actions`` starts rasa-sdk directly, without importing Rasa at all.

``serve SPEC`` is the fork server the launcher uses when it starts several Rasa
servers whose models need no TensorFlow: it imports Rasa once, then forks one
child per server listed in the JSON file SPEC (name, folder, environment and
``rasa run`` arguments; the file holds the API token, so it is 0600 and read
once, then deleted). Each child prefixes its output lines with its name and
``\x1f``. When one child stops, the others are stopped too; but a child marked
``restart`` (one of several replicas of a bot) that stops after it answered is
forked again, unless it was forked again less than RESTART_WINDOW seconds ago.
"""
from __future__ import annotations

import ctypes
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import selectors
import signal
import socket
import sys
import tarfile
import time
import traceback
import types
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from handoff import longlived

TOKEN_ENV = "RASA_API_TOKEN"
TELEMETRY_ENV = "RASA_TELEMETRY_ENABLED"
ACTION_URL_ENV = "ACTION_SERVER_URL"
DEFAULT_RASA_PORT = "5005"
COMMANDS = ("run", "train", "actions", "serve")
NAME_SEPARATOR = b"\x1f"
STOP_WAIT_SECONDS = 10.0
# A child forked again that stops again this soon stops them all: it is failing, not flaky.
RESTART_WINDOW = 60.0
PR_SET_PDEATHSIG = 1
# What every Rasa server imports; the fork server imports it once for all of them.
PRELOAD = (
    "rasa.__main__", "rasa.core.run", "rasa.server", "rasa.core.agent", "rasa.core.tracker_store",
    "rasa.core.lock_store", "rasa.core.channels.rest", "rasa.engine.storage.local_model_storage",
)

# Rasa components that run without TensorFlow. A model or config naming anything
# else (DIET, TED, a custom component) gets the real TensorFlow.
WITHOUT_TENSORFLOW = frozenset({
    # graph plumbing every model has
    "DefaultPolicyPredictionEnsemble", "NLUMessageConverter", "DomainProvider", "RuleOnlyDataProvider",
    "RegexMessageHandler",
    # NLU
    "WhitespaceTokenizer", "RegexFeaturizer", "LexicalSyntacticFeaturizer", "CountVectorsFeaturizer",
    "LogisticRegressionClassifier", "SklearnIntentClassifier", "KeywordIntentClassifier",
    "CRFEntityExtractor", "RegexEntityExtractor", "EntitySynonymMapper", "FallbackClassifier",
    # dialogue
    "MemoizationPolicy", "AugmentedMemoizationPolicy", "RulePolicy",
})
# Components that load and save their model with skops.
WITH_SKOPS = frozenset({"LogisticRegressionClassifier", "SklearnIntentClassifier"})
# Packages TensorFlow brings; Rasa imports them at start even when no component uses them.
TENSORFLOW_PACKAGES = frozenset({
    "tensorflow", "tensorflow_addons", "tensorflow_hub", "tensorflow_text", "keras", "jax", "jaxlib",
})
# Our own code keeps its warnings; everyone else's deprecations are not this project's to fix.
THIRD_PARTY = r"(?!handoff\b|actions\b|chatroom\b|desk\b)"


def quiet_warnings() -> None:
    """Ignore deprecation warnings raised in third-party code (again after Sanic re-enables them)."""
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY)


def keep_quiet_after_rasa_sets_filters() -> None:
    """Put our filters back in front each time Rasa sets its own (``rasa.utils.common``)."""
    import rasa.utils.common

    rasa_filters = rasa.utils.common._filter_warnings

    def filter_warnings(*args: Any, **kwargs: Any) -> None:
        rasa_filters(*args, **kwargs)
        quiet_warnings()

    rasa.utils.common._filter_warnings = filter_warnings


class _Absent(type):
    """Stands for any TensorFlow name: subclassable and usable in annotations, never callable."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _absent(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls.__dict__.get("_absent", False):
            raise RuntimeError(
                f"{cls.__qualname__} needs TensorFlow, which this process left out because its "
                "model uses no TensorFlow component (start it with the plain `rasa` command)"
            )
        return super().__call__(*args, **kwargs)


_absent_names: Dict[str, type] = {}


def _absent(qualname: str) -> type:
    if qualname not in _absent_names:
        namespace = {"_absent": True, "__qualname__": qualname, "__module__": "absent"}
        _absent_names[qualname] = _Absent(qualname.rpartition(".")[2], (), namespace)
    return _absent_names[qualname]


class _AbsentModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _absent(f"{self.__name__}.{name}")


class _LeaveOut(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of TensorFlow's packages with empty stand-ins."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Optional[Any]:
        if name.partition(".")[0] not in TENSORFLOW_PACKAGES:
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec: Any) -> types.ModuleType:
        return _AbsentModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []  # type: ignore[attr-defined]


def leave_out_tensorflow() -> None:
    """Make every later import of TensorFlow (and keras, jax) a stand-in that costs nothing."""
    if not any(isinstance(finder, _LeaveOut) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LeaveOut())


def model_components(model: Path) -> List[str]:
    """Return the class paths the model's prediction graph uses (from its metadata.json)."""
    if model.is_dir():
        archives = sorted(model.glob("*.tar.gz"), key=lambda archive: archive.stat().st_mtime)
        if not archives:
            return []
        model = archives[-1]
    with tarfile.open(model, "r:gz") as archive:
        for member in archive:
            if member.name.lstrip("/") == "metadata.json":
                handle = archive.extractfile(member)
                metadata = json.load(handle) if handle is not None else {}
                return [node["uses"] for node in metadata["predict_schema"]["nodes"].values()]
    return []


def config_components(config: Path) -> List[str]:
    """Return the components a config.yml names; Rasa's defaults (DIET, TED) when a part is missing."""
    import yaml

    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    names = []
    for section in ("pipeline", "policies"):
        entries = data.get(section) or [{"name": f"(Rasa's default {section})"}]
        names += [str(entry.get("name")) for entry in entries if isinstance(entry, dict)]
    return names


def _class_names(paths: Iterable[str]) -> List[str]:
    # A bare name is one of Rasa's, as is a class under rasa.; a custom class keeps its full path.
    return [path.rpartition(".")[2] if path.startswith("rasa.") else path for path in paths]


def needs_tensorflow(components: Sequence[str]) -> bool:
    """Tell whether any of these components (class paths) may use TensorFlow."""
    return not components or not set(_class_names(components)) <= WITHOUT_TENSORFLOW


def _option(args: Sequence[str], *names: str) -> Optional[str]:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def components_for(command: str, args: Sequence[str], cwd: Path = Path()) -> List[str]:
    """Return the components ``rasa run`` would load, or ``rasa train`` would train."""
    try:
        if command == "run":
            return model_components(cwd / (_option(args, "--model", "-m") or "models"))
        return config_components(cwd / (_option(args, "--config", "-c") or "config.yml"))
    except (OSError, ValueError, KeyError, tarfile.TarError):
        return []  # unknown: Rasa reports the real problem, with TensorFlow in place


def with_token(args: List[str]) -> List[str]:
    """Return ``rasa run``'s arguments with the API token from the environment added."""
    if _option(args, "--auth-token", "-t") is not None:
        raise SystemExit(f"error: pass the API token in ${TOKEN_ENV}, not on the command line")
    token = os.environ.get(TOKEN_ENV, "")
    if "--enable-api" in args and not token:
        raise SystemExit(f"error: --enable-api needs ${TOKEN_ENV} (the launcher generates one)")
    return [*args, "--auth-token", token] if token else args


def set_action_url(endpoints: str, url: str) -> str:
    """Return endpoints.yml text with ``action_endpoint: url:`` set to ``url``; the rest kept as is."""
    lines, in_section, done = [], False, False
    for line in endpoints.splitlines():
        if line[:1] not in ("", " ", "\t", "#"):
            if in_section and not done:
                lines.append(f"  url: {url}")
                done = True
            in_section = line.split(":", 1)[0].strip() == "action_endpoint"
        elif in_section and line.strip().startswith("url:"):
            lines.append(f"{line[:len(line) - len(line.lstrip())]}url: {url}")
            done = True
            continue
        lines.append(line)
    if not done:
        lines += [] if in_section else ["action_endpoint:"]
        lines.append(f"  url: {url}")
    return "\n".join(lines) + "\n"


def with_action_url(args: List[str]) -> List[str]:
    """Return ``rasa run``'s arguments pointing at endpoints with ``$ACTION_SERVER_URL``, if set."""
    url = os.environ.get(ACTION_URL_ENV, "")
    if not url:
        return args
    from handoff.config import own_host_id, state_dir

    source = Path(_option(args, "--endpoints") or "endpoints.yml")
    text = source.read_text(encoding="utf-8") if source.exists() else ""
    folder = state_dir() / "run"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # One file per server: replicas of a bot start at once and must not write the same file.
    port = _option(args, "--port", "-p") or DEFAULT_RASA_PORT
    target = folder / f"{own_host_id()}-{port}-endpoints.yml"
    partial = target.with_suffix(".tmp")
    partial.write_text(set_action_url(text, url), encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(target)
    kept = [arg for i, arg in enumerate(args) if arg != "--endpoints" and args[i - 1:i] != ["--endpoints"]]
    return [arg for arg in kept if not arg.startswith("--endpoints=")] + ["--endpoints", str(target)]


def prepare(components: Sequence[str]) -> None:
    """Set up this process for Rasa: TensorFlow left out if unused, skops first, warnings quiet."""
    if not needs_tensorflow(components):
        leave_out_tensorflow()
    if WITH_SKOPS & set(_class_names(components)):
        import skops.io  # noqa: F401
    import sanic  # noqa: F401

    quiet_warnings()
    keep_quiet_after_rasa_sets_filters()


def run_rasa(command: str, args: List[str]) -> None:
    """Run ``rasa COMMAND ARGS`` in this process (after ``prepare``)."""
    if command == "run":
        args = with_action_url(with_token(args))
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", command, *args]
    rasa_main()


def serve(spec: Path) -> int:
    """Import Rasa once, fork one server per entry of ``spec``; return when they have all stopped."""
    servers = json.loads(spec.read_text(encoding="utf-8"))
    spec.unlink()
    components = [
        component for server in servers
        for component in components_for("run", server["args"], Path(server["cwd"]))
    ]
    prepare(components)
    for module in PRELOAD + tuple(sorted({path.rpartition(".")[0] for path in components})):
        importlib.import_module(module)
    longlived.freeze_loaded()
    children: Dict[int, Tuple[Dict[str, Any], int]] = {}
    for server in servers:
        pid, output = _fork(server, [fd for _, fd in children.values()])
        children[pid] = (server, output)
    return _watch(children)


def _fork(server: Dict[str, Any], open_fds: Iterable[int]) -> Tuple[int, int]:
    """Fork a child serving ``server``; return its pid and the read end of its output."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        for fd in open_fds:
            os.close(fd)
        os._exit(_serve_one(server, write_end))
    os.close(write_end)
    return pid, read_end


def _answers(server: Dict[str, Any]) -> bool:
    """Tell whether the server accepts connections (Rasa listens once its model is loaded)."""
    port = int(_option(server["args"], "--port", "-p") or DEFAULT_RASA_PORT)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _serve_one(server: Dict[str, Any], output: int) -> int:
    """Run one Rasa server in a forked child; return its exit code."""
    code = 1
    try:
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        # If the fork server dies, so does this server.
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        os.chdir(server["cwd"])
        os.environ.update(server["env"])
        run_rasa("run", list(server["args"]))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _watch(children: Dict[int, Tuple[Dict[str, Any], int]]) -> int:
    """Relay the children's output with their names; when one stops or we are told to, stop all.

    A child marked ``restart`` that stops after it answered is forked again instead.
    """
    stop_requested = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stop_requested.append(number))
    selector = selectors.DefaultSelector()
    partial: Dict[int, bytes] = {}
    out = sys.stdout.buffer

    def relay(server: Dict[str, Any], fd: int) -> None:
        selector.register(fd, selectors.EVENT_READ, server["name"])
        partial[fd] = b""

    def say(name: str, text: str) -> None:
        out.write(name.encode() + NAME_SEPARATOR + text.encode() + b"\n")
        out.flush()

    for server, fd in children.values():
        relay(server, fd)
    answered: Dict[str, bool] = {}
    restarted: Dict[str, float] = {}
    exit_code, signalled, deadline = 0, False, 0.0
    while children or selector.get_map():
        for key, _ in selector.select(timeout=0.2):
            data = os.read(key.fd, 65536)
            lines = (partial[key.fd] + data).split(b"\n")
            partial[key.fd] = lines.pop() if data else b""
            if not data:
                lines = [line for line in lines if line]
                selector.unregister(key.fd)
                os.close(key.fd)
            for line in lines:
                out.write(key.data.encode() + NAME_SEPARATOR + line + b"\n")
            out.flush()
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            server, _ = children.pop(pid)
            name, code = server["name"], _exit_code(status)
            if stop_requested or signalled:
                continue
            recently = name in restarted and time.monotonic() - restarted[name] < RESTART_WINDOW
            if server.get("restart") and answered.get(name) and not recently:
                say(name, f"stopped (exit code {code}); starting it again")
                restarted[name], answered[name] = time.monotonic(), False
                pid, fd = _fork(server, list(selector.get_map()))
                children[pid] = (server, fd)
                relay(server, fd)
            else:
                print(f"{name} stopped (exit code {code}); stopping the other Rasa servers", flush=True)
                exit_code = code or 1
                stop_requested.append(signal.SIGTERM)
        for server, _ in children.values():
            if server.get("restart") and not answered.get(server["name"]):
                answered[server["name"]] = _answers(server)
        if stop_requested and not signalled:
            signalled, deadline = True, time.monotonic() + STOP_WAIT_SECONDS
            for pid in children:
                os.kill(pid, signal.SIGTERM)
        if signalled and children and time.monotonic() > deadline:
            for pid in children:
                os.kill(pid, signal.SIGKILL)
    return exit_code


def main(argv: Optional[List[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        raise SystemExit(f"usage: python -m handoff.rasa_entry {{{','.join(COMMANDS)}}} [arguments]")
    command, args = args[0], args[1:]
    os.environ.setdefault(TELEMETRY_ENV, "false")
    quiet_warnings()
    if command == "actions":
        import sanic  # noqa: F401

        quiet_warnings()
        from rasa_sdk.__main__ import main as actions_main

        sys.argv = ["rasa_sdk", *args]
        actions_main()
        return
    if command == "serve":
        raise SystemExit(serve(Path(args[0])))
    prepare(components_for(command, args))
    run_rasa(command, args)


if __name__ == "__main__":
    main()
