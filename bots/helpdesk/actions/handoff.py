from handoff.actions import *  # noqa: F401,F403
