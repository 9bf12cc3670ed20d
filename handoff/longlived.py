"""Keep the garbage collector off what a server loads to serve: its modules, app and model last as long as it.

CPython's full collection walks every object it tracks. A Rasa server tracks about
half a million once Rasa is imported, a chatroom worker over a hundred thousand;
on a slow core one full collection of those takes most of a second (Rasa) or a
quarter of one (chatroom), and every turn in flight waits for it. Frozen objects
are left out of later collections, and pages frozen before a fork stay shared
with the children instead of being copied when the collector touches them.
The price: a frozen object that later becomes cyclic garbage is never freed, so
freeze only what lives as long as the process. The launcher loads a new model by
starting a new server; a model replaced through Rasa's HTTP API (PUT /model)
would leave the old one's reference cycles in memory.
"""
from __future__ import annotations

import gc


def freeze_loaded() -> None:
    """Collect what loading left behind, then leave everything still alive out of later collections."""
    gc.collect()
    gc.freeze()
