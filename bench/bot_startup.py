"""Start-up time and memory of one bot: our pipeline vs Rasa's default (DIET + TED).

Run: .venv/bin/python -m bench.bot_startup [--bot helpdesk] [--runs 3]
Trains a model with each config into a temporary folder (the default pipeline
takes minutes), starts it the way `make run` does (handoff.rasa_entry, which
leaves TensorFlow out when the model needs none), and reports the time until
the model answers /status and the resident memory after the first message.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests
import yaml

from bench.measure import tree_rss_mib
from handoff.config import REPO_ROOT
from handoff.run import RASA_PYTHON
from tests.stack import free_port

TOKEN = "bench"
# Rasa fills in its default pipeline and policies (DIET, TED, ...) when none are given.
DEFAULT_CONFIG = {"recipe": "default.v1", "language": "en", "assistant_id": "bench_default"}


def train(bot_dir: Path, config: Path, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(RASA_PYTHON), "-m", "handoff.rasa_entry", "train", "--config", str(config),
         "--domain", "domain.yml", "--data", "data", "--out", str(out), "--fixed-model-name", "model"],
        cwd=bot_dir, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def start_and_measure(bot_dir: Path, model: Path, state: Path) -> tuple[float, float]:
    """Return (seconds until the model answers, MiB resident after one message)."""
    port = free_port()
    env = {
        **os.environ,
        "ACTION_SERVER_URL": f"http://127.0.0.1:{free_port()}/webhook",
        "RASA_TRACKER_DB": str(state / f"tracker-{port}.db"),
        "RASA_API_TOKEN": TOKEN,
        "HANDOFF_STATE_DIR": str(state),
        "HANDOFF_HOST_ID": bot_dir.name,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(RASA_PYTHON), "-m", "handoff.rasa_entry", "run", "--model", str(model),
         "--endpoints", "endpoints.yml", "--credentials", "credentials.yml", "-i", "127.0.0.1",
         "-p", str(port), "--enable-api"],
        cwd=bot_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/status", params={"token": TOKEN}, timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"rasa run exited with {process.returncode}")
            time.sleep(0.2)
        ready = time.perf_counter() - started
        requests.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                      json={"sender": "bench", "message": "hello"}, timeout=60)
        return ready, tree_rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bot", default="helpdesk", help="folder under bots/ (default helpdesk)")
    parser.add_argument("--runs", type=int, default=3, help="starts per pipeline (default 3)")
    args = parser.parse_args()
    bot_dir = REPO_ROOT / "bots" / args.bot
    with tempfile.TemporaryDirectory(prefix="bot-startup-") as folder:
        root = Path(folder)
        default_config = root / "default-config.yml"
        default_config.write_text(yaml.safe_dump(DEFAULT_CONFIG))
        print(f"| {args.bot} pipeline | training | start-up to ready (median of {args.runs}) "
              "| memory after first message |")
        print("| --- | --- | --- | --- |")
        configs = (("ours (config.yml)", bot_dir / "config.yml"), ("Rasa default (DIET+TED)", default_config))
        for name, config in configs:
            out = root / name.split()[0].lower()
            training = train(bot_dir, config, out)
            runs = [start_and_measure(bot_dir, out / "model.tar.gz", root) for _ in range(args.runs)]
            ready = statistics.median(r[0] for r in runs)
            memory = max(r[1] for r in runs)
            print(f"| {name} | {training:.0f} s | {ready:.1f} s | {memory:.0f} MiB |")


if __name__ == "__main__":
    main()
