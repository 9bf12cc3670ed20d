"""Crash points for the crash tests: with CHATROOM_FAULT=<point>, the worker dies there, once.

The setting is for tests only; unset (the default), ``reach`` does nothing.
A marker file in the state folder makes each point fire once, so the worker
gunicorn starts in place of the dead one gets through.
"""
from __future__ import annotations

import logging
import os
import signal

from flask import current_app

from handoff.config import state_dir

logger = logging.getLogger(__name__)

POINTS = ("after_journal", "after_arrival", "after_switch")


def reach(point: str) -> None:
    """Die here (SIGKILL, no clean-up) if the fault setting names this point and it has not fired yet."""
    if current_app.config.get("FAULT") != point:
        return
    marker = state_dir() / f"fault-{point}.fired"
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    logger.warning("fault point %s reached: killing this worker", point)
    os.kill(os.getpid(), signal.SIGKILL)
