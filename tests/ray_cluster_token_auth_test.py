"""The README's cluster section, end to end on loopback: a real ``ray start --head`` (Ray 2.60 turns token
authentication on because the machine has a token) and a second node process joined to it, then the sweep
with ``--ray-address`` gives the same per-episode outcomes as a local run. A missing, unreadable or wrong
token is one line each. Only the processes this test starts are stopped, by PID (never ``ray stop``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from services.eval import fixtures as processes
from services.eval import sweep as sweep_cli
from services.eval.fixtures import RAY_VARIABLES, machine_environment, token_auth_cluster

EPISODES = 4


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, Path]]:
    with token_auth_cluster(nodes=2, cpus_per_node=1) as started:
        yield started.address, started.home


def test_sweep_on_a_token_auth_cluster_matches_a_local_run(cluster, tmp_path: Path) -> None:
    address, home = cluster
    sweep = subprocess.run(
        processes.sweep_command(
            tmp_path / "cluster", "--ray-address", address, "--workers", "2", episodes=EPISODES
        ),
        env=machine_environment(home),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    evaluate(
        SweepConfig(policy="scripted", episodes=EPISODES, env=EnvSettings(), serial=True, progress=False),
        tmp_path / "local",
        argv=["local"],
    )
    cluster_rows = processes.stored(tmp_path / "cluster")
    assert len(cluster_rows) == EPISODES
    assert cluster_rows == processes.stored(tmp_path / "local")


def one_line_error(monkeypatch, capsys, tmp_path: Path, address: str, **environment: str) -> str:
    for name in RAY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-token"))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code = sweep_cli.main(
        ["--policy", "scripted", "--episodes", "1", "--ray-address", address, "--out", str(tmp_path / "out")]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error, error
    return error


def test_no_token_on_this_machine_is_one_line(cluster, tmp_path, monkeypatch, capsys) -> None:
    address, _ = cluster
    error = one_line_error(monkeypatch, capsys, tmp_path, address)
    assert error.startswith(f"error: the Ray cluster at {address} requires token authentication")
    assert "RAY_AUTH_TOKEN is unset" in error and "auth_token does not exist" in error


def test_a_token_path_that_cannot_be_read_is_one_line(cluster, tmp_path, monkeypatch, capsys) -> None:
    address, _ = cluster
    missing = tmp_path / "nowhere" / "token"
    error = one_line_error(monkeypatch, capsys, tmp_path, address, RAY_AUTH_TOKEN_PATH=str(missing))
    assert error.startswith(f"error: RAY_AUTH_TOKEN_PATH={missing} but that file cannot be read")


def test_the_wrong_token_is_one_line(cluster, tmp_path, monkeypatch, capsys) -> None:
    address, _ = cluster
    error = one_line_error(monkeypatch, capsys, tmp_path, address, RAY_AUTH_TOKEN="0" * 64)
    assert error.startswith(f"error: the Ray cluster at {address} refused the token from RAY_AUTH_TOKEN")
