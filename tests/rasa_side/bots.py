"""Import a bot's actions package under a name of its own: every bot's is called ``actions``."""
import importlib.util
import sys
from pathlib import Path
from typing import Any, Dict

import yaml

BOTS = Path(__file__).resolve().parents[2] / "bots"


def load_actions(bot: str) -> str:
    """Import bots/<bot>/actions as ``<bot>_actions`` (once) and return that name."""
    name = f"{bot}_actions"
    if name not in sys.modules:
        folder = BOTS / bot / "actions"
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    return name


def load_domain(bot: str) -> Dict[str, Any]:
    """Return the bot's real domain.yml, as the action server would get it."""
    return yaml.safe_load((BOTS / bot / "domain.yml").read_text())
