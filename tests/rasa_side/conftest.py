"""Tests run by the Rasa environment (Python 3.10), where rasa-sdk lives."""
import os
from pathlib import Path

# handoff.actions checks its config when imported, as an action server does at start.
os.environ.setdefault("HANDOFF_CONFIG", str(Path(__file__).resolve().parents[2] / "handoff_config.yml"))
os.environ.setdefault("HANDOFF_HOST_ID", "helpdesk")
