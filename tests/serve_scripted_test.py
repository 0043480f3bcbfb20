"""The scripted expert served like any policy: the server gives each connection its own expert, the
``remote:`` client sends the env's state it plans from, and a sweep through the server stores the same
episodes as the expert run in-process."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from libs.evaluation.results.store import STORE_FILE_NAME
from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from libs.policy_api.registry import make_policy
from libs.policy_api.remote import RemoteInferenceError, packb, unpackb
from services.policy_server.server import PolicyServer

EPISODES = 3


@pytest.fixture(scope="module")
def served_expert():
    server = PolicyServer(
        make_policy("scripted"),
        "scripted",
        host="127.0.0.1",
        port=0,
        new_client_policy=lambda: make_policy("scripted"),
    ).start_in_thread()
    yield server
    server.stop()


def stored(out: Path) -> list[tuple]:
    with sqlite3.connect(out / STORE_FILE_NAME) as connection:
        rows = connection.execute("SELECT seed, outcome, steps FROM episodes").fetchall()
    return sorted(rows)


def test_a_sweep_through_the_server_matches_the_expert_in_process(served_expert, tmp_path: Path) -> None:
    def sweep(policy: str, out: Path) -> list[tuple]:
        evaluate(
            SweepConfig(policy=policy, episodes=EPISODES, env=EnvSettings(), serial=True, progress=False),
            out,
            argv=[policy],
        )
        return stored(out)

    local = sweep("scripted", tmp_path / "local")
    remote = sweep(f"remote:{served_expert.url}", tmp_path / "remote")
    assert remote == local
    assert all(outcome == "success" for _, outcome, _ in local)


def test_an_observation_without_the_env_state_is_one_line(served_expert) -> None:
    from websockets.sync.client import connect

    with connect(served_expert.url) as raw:
        assert unpackb(raw.recv())["needs_env_state"] is True
        raw.send(packb({"observation.state": np.zeros(6, np.float32)}))
        reply = raw.recv()
    assert reply.startswith("bad request: this policy plans from the simulator's state") and "\n" not in reply


def test_remote_expert_without_attach_env_says_so(served_expert) -> None:
    policy = make_policy(f"remote:{served_expert.url}")
    with pytest.raises(RemoteInferenceError, match=r"call attach_env\(env\) after every env.reset"):
        policy.infer({})
    policy.close()
