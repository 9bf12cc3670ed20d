"""A Rasa server leaves what it loaded (Rasa, the model) out of garbage collections once it serves."""
import asyncio
import gc

from handoff.channel import HandoffRestInput


async def ignore(_message) -> None:
    return None


def test_the_channel_freezes_what_the_server_loaded_once_it_has_started():
    webhook = HandoffRestInput().blueprint(ignore)
    started = [heard.listener for heard in webhook._future_listeners if heard.event == "after_server_start"]
    assert len(started) == 1, "Rasa loads the model before the server starts; the freeze comes after"
    gc.unfreeze()
    loaded = [{"model part": index} for index in range(1000)]
    try:
        asyncio.run(started[0](None, None))
        # Everything alive then, the stand-in for the model included, is out of later collections.
        assert gc.get_freeze_count() > len(loaded)
        collected = {id(thing) for thing in gc.get_objects()}
        assert not any(id(part) in collected for part in loaded)
    finally:
        gc.unfreeze()
