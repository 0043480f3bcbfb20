"""Fault injection: the policy server a sweep plays through is killed (SIGKILL) at seeded random moments.
Each kill ends the sweep in one line that names the server and the fix, keeps every episode stored before
it, and the same command, once the server is back, runs only what is missing; the finished sweep stores
exactly the episodes of an uninterrupted one."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from services.eval import fixtures as processes

EPISODES = 6
KILLS = 5
COLUMNS = "seed, outcome, steps"


def start_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "services.policy_server.serve", "--policy", "scripted", "--host", "127.0.0.1",
         "--port", str(port)],
        env=processes.subprocess_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return server
        except OSError:
            assert server.poll() is None, "the policy server did not start"
            assert time.monotonic() < deadline, "the policy server did not answer in time"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[tuple]:
    out = tmp_path_factory.mktemp("reference")
    config = SweepConfig(policy="scripted", episodes=EPISODES, env=EnvSettings(), serial=True, progress=False)
    evaluate(config, out, argv=["scripted"])
    return processes.stored(out, COLUMNS)


def kill_at_a_random_moment(server: subprocess.Popen, sweep: subprocess.Popen, out: Path, rng: random.Random):
    """SIGKILL the server once the sweep has stored 0 or 1 more episodes and a random fraction of a second
    has passed (so kills land while connecting, mid-episode and between episodes)."""
    before = len(processes.stored(out, COLUMNS))
    wanted = min(EPISODES, before + rng.choice([0, 1]))
    while len(processes.stored(out, COLUMNS)) < wanted and sweep.poll() is None:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.6))
    server.send_signal(signal.SIGKILL)
    server.wait()


def test_killing_the_policy_server_loses_no_stored_episode(tmp_path: Path, reference) -> None:
    rng = random.Random(33)
    port = processes.free_port()
    out = tmp_path / "sweep"
    command = processes.sweep_command(
        out, "--serial", policy=f"remote:ws://127.0.0.1:{port}", episodes=EPISODES
    )
    kept_counts = []
    for _ in range(KILLS):
        server = start_server(port)
        sweep = processes.start_sweep(command)
        kill_at_a_random_moment(server, sweep, out, rng)
        _, stderr = sweep.communicate(timeout=300)
        rows = processes.stored(out, COLUMNS)
        assert set(rows) <= set(reference), "an episode stored around the kill differs from the reference"
        kept_counts.append(len(rows))
        if sweep.returncode == 0:
            continue  # the kill came after the last episode
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), stderr[-3000:]
        assert "policy server" in lines[0], lines[0]
        if rows:  # what survived, and how to go on
            assert f"the {len(rows)} episodes stored" in lines[0] and "same command" in lines[0], lines[0]
    assert kept_counts == sorted(kept_counts), "a kill lost episodes stored before it"
    server = start_server(port)
    try:
        finished = subprocess.run(
            command, env=processes.subprocess_environment(), capture_output=True, text=True
        )
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert processes.stored(out, COLUMNS) == reference
