"""``remote:`` against a server built as openpi's ``serve_policy`` builds one (openpi-client's packer and
protocol, its own resolve and process, no spec in its metadata): the spec comes from the address, openpi's
keys go out, the chunk comes back exact, an error is one line, and a sweep runs through it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from libs.policy_api.registry import make_policy
from libs.policy_api.remote import RemoteInferenceError, RemotePolicyError
from services.eval.fixtures import own_environment

SERVER_PEX = Path("tests.openpi_client/openpi_server.pex")
CHUNK = 8


@pytest.fixture(scope="module")
def openpi_server():
    process = subprocess.Popen(
        [sys.executable, str(SERVER_PEX), "--port", "0", "--chunk", str(CHUNK)],
        stdout=subprocess.PIPE,
        text=True,
        env=own_environment(),
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on "), f"openpi server did not start: {line!r}"
        yield f"ws://127.0.0.1:{int(line.split()[-1])}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def address(url: str) -> str:
    return f"remote:{url}?cameras=overhead:96x128,wrist:96x128&chunk={CHUNK}&steps=4&keys=openpi"


def observation(task: str = "put the block in the bowl") -> dict:
    rng = np.random.default_rng(0)
    return {
        "observation.state": np.arange(6, dtype=np.float32),
        "observation.images.overhead": rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),
        "observation.images.wrist": rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),
        "task": task,
    }


def test_remote_reads_the_spec_from_the_address_and_gets_the_exact_chunk(openpi_server: str) -> None:
    policy = make_policy(address(openpi_server))
    assert policy.spec.chunk_length == CHUNK and policy.spec.n_action_steps == 4
    assert [camera.key for camera in policy.spec.cameras] == [
        "observation.images.overhead",
        "observation.images.wrist",
    ]
    obs = observation()
    policy.reset()  # stays on this side: openpi's server has no reset message (it would fail on one)
    chunk = policy.infer(obs)
    expected = np.arange(6, dtype=np.float32)[None, :] + np.arange(CHUNK, dtype=np.float32)[:, None]
    expected[:, -1] = obs["observation.images.overhead"].mean() / 2.55
    np.testing.assert_allclose(chunk, expected, rtol=1e-6)
    assert policy.last_server_timing["infer_ms"] >= 0
    policy.close()


def test_the_servers_traceback_becomes_one_line(openpi_server: str) -> None:
    policy = make_policy(address(openpi_server))
    with pytest.raises(RemoteInferenceError) as raised:
        policy.infer(observation(task="fail"))
    assert str(raised.value).endswith("ValueError: the prompt asked this policy to fail")
    assert "\n" not in str(raised.value)
    with pytest.raises(RemoteInferenceError, match="closed the connection"):
        policy.infer(observation())  # openpi closes the connection after an error: said in one line


def test_a_server_without_a_spec_asks_for_one_in_the_address(openpi_server: str) -> None:
    with pytest.raises(RemotePolicyError, match=r"no spec in its metadata and no \?chunk= option"):
        make_policy(f"remote:{openpi_server}")


def test_a_sweep_runs_through_the_openpi_server(tmp_path: Path, openpi_server: str) -> None:
    config = SweepConfig(
        policy=address(openpi_server),
        episodes=2,
        env=EnvSettings(max_steps=24),
        serial=True,
        progress=False,
    )
    evaluate(config, tmp_path, argv=["remote-openpi"])
    report = json.loads((tmp_path / "report.json").read_text())
    (checkpoint,) = report["checkpoints"]
    assert checkpoint["episodes"] == 2
    assert checkpoint["outcome_counts"].get("contract_violation", 0) == 0
