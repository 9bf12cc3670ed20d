"""A chatroom worker leaves what it loaded (the app and everything imported) out of garbage collections."""
import subprocess
import sys
import textwrap

from handoff.config import REPO_ROOT

# Run under gevent's runner, as the chatroom is: importing chatroom.__main__ unpatched starts it anew.
WORKER_LOADS = textwrap.dedent("""
    import gc
    from chatroom.__main__ import ChatroomWorker

    class App:
        def wsgi(self):
            self.parts = [{"app part": index} for index in range(1000)]
            return self.parts

    gc.unfreeze()
    worker = ChatroomWorker.__new__(ChatroomWorker)
    worker.app = App()
    worker.load_wsgi()
    collected = {id(thing) for thing in gc.get_objects()}
    print(gc.get_freeze_count(), sum(id(part) in collected for part in worker.wsgi))
""")


def test_a_chatroom_worker_freezes_what_it_loaded(tmp_path):
    script = tmp_path / "worker_loads.py"
    script.write_text(WORKER_LOADS)
    done = subprocess.run([sys.executable, "-m", "gevent.monkey", str(script)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    frozen, still_collected = (int(word) for word in done.stdout.split())
    assert frozen > 1000
    assert still_collected == 0
