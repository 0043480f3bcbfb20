"""The README's cluster section, end to end on loopback: a real ``ray start --head`` (Ray 2.60 turns token
authentication on because the machine has a token) and a second node process joined to it, then the sweep
with ``--ray-address`` gives the same per-episode outcomes as a local run. A missing, unreadable or wrong
token is one line each. Only the processes this test starts are stopped, by PID (never ``ray stop``)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from services.eval import fixtures as processes
from services.eval import sweep as sweep_cli
from services.eval.fixtures import free_port

EPISODES = 4
RAY_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


def machine_environment(home: Path) -> dict[str, str]:
    """A shell on a machine whose home holds the token, as the README's commands run (no Ray variables)."""
    environment = {key: value for key, value in os.environ.items() if key not in RAY_VARIABLES}
    environment.update(HOME=str(home), PYTHONPATH=os.pathsep.join(sys.path))
    return environment


def ray_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ray.scripts.scripts", *args]


def alive_nodes(address: str, environment: dict[str, str]) -> int:
    status = subprocess.run(
        ray_cli("status", f"--address={address}"),
        env={**environment, "RAY_AUTH_MODE": "token"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    active = (
        status.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in status.stdout else ""
    )
    return len(re.findall(r"^\s*1 node_", active, flags=re.MULTILINE))


def wait_for_nodes(
    address: str, environment: dict[str, str], nodes: int, started: list[subprocess.Popen]
) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for process in started:
            assert process.poll() is None, f"`ray start` exited with {process.returncode}"
        if alive_nodes(address, environment) >= nodes:
            return
        time.sleep(2)
    raise AssertionError(f"the cluster at {address} did not reach {nodes} nodes")


def stop(processes: list[subprocess.Popen], temp_dir: str) -> None:
    """SIGTERM to each `ray start --block` we started (it stops its own node), then anything still
    running from this test's own Ray session directory."""
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in (int(entry) for entry in os.listdir("/proc") if entry.isdigit()):
        try:
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if temp_dir.encode() in command_line and pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, Path]]:
    home = Path(tempfile.mkdtemp(prefix="ray-home-"))
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay short
    environment = machine_environment(home)
    generated = subprocess.run(
        ray_cli("get-auth-token", "--generate"), env=environment, capture_output=True, text=True, timeout=120
    )
    assert generated.returncode == 0 and (home / ".ray" / "auth_token").is_file(), generated.stderr
    address = f"127.0.0.1:{free_port()}"
    common = [f"--temp-dir={temp_dir}", "--num-cpus=1", "--disable-usage-stats", "--block"]
    processes: list[subprocess.Popen] = []
    try:
        # The README's head command (plus loopback and test-only ports); the token file turns auth on.
        processes.append(
            subprocess.Popen(
                ray_cli(
                    "start",
                    "--head",
                    f"--port={address.split(':')[1]}",
                    "--node-ip-address=127.0.0.1",
                    "--include-dashboard=false",
                    *common,
                ),
                env=environment,
            )
        )
        wait_for_nodes(address, environment, 1, processes)
        # The README's worker command, on the same machine: a second node process.
        processes.append(
            subprocess.Popen(
                ray_cli("start", f"--address={address}", "--node-ip-address=127.0.0.1", *common),
                env={**environment, "RAY_AUTH_MODE": "token"},
            )
        )
        wait_for_nodes(address, environment, 2, processes)
        yield address, home
    finally:
        stop(processes, temp_dir)
        shutil.rmtree(home, ignore_errors=True)


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
