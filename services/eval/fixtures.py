"""Test support for the sweep as a process: the command a user runs, its store read as another process
reads it while the sweep writes, a sweep held still while a fault is injected, and a token-auth Ray cluster
on loopback. Shared by the fault, interrupt and cluster tests (kept out of any test module, as the import
rules ask)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from libs.evaluation.results.store import STORE_FILE_NAME

#: what each test compares: one row per checkpoint and seed
STORED_COLUMNS = "checkpoint_id, seed, outcome, steps"


def subprocess_environment() -> dict[str, str]:
    """This interpreter's environment with its import path, for a sweep started as a subprocess."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def own_environment() -> dict[str, str]:
    """This environment without this interpreter's pex and Python settings, for a pex of another resolve
    run as a subprocess: it runs with its own requirements only, nothing of the test's leaks into it."""
    return {
        key: value for key, value in os.environ.items() if not key.startswith(("PEX_", "__PEX", "PYTHON"))
    }


def sweep_command(out: Path, *extra: str, policy: str = "scripted", episodes: int) -> list[str]:
    return [
        sys.executable, "-m", "services.eval.sweep", "--policy", policy, "--episodes", str(episodes),
        "--out", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (for a server or Ray head the test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sweep(command: list[str]) -> subprocess.Popen:
    """``command`` (a ``sweep_command``) as a process, its output kept as text for the test to read."""
    return subprocess.Popen(
        command, env=subprocess_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def stored(out: Path, columns: str = STORED_COLUMNS, check_integrity: bool = False) -> list[tuple]:
    """The stored episodes, read-only, as another process would read them while the sweep writes."""
    path = out / STORE_FILE_NAME
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=120) as connection:
            if check_integrity:
                assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = connection.execute(f"SELECT {columns} FROM episodes").fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):  # the sweep has only just created the file
            return []
        raise
    return sorted(rows)


def wait_for_rows(out: Path, process: subprocess.Popen, rows: int = 1, timeout_s: float = 600) -> None:
    """Until ``rows`` episodes are stored; the sweep ending first is an error showing its stderr."""
    deadline = time.monotonic() + timeout_s
    while len(stored(out)) < rows:
        if process.poll() is not None:
            _, stderr = process.communicate()
            raise AssertionError(
                f"the sweep ended ({process.returncode}) before it could be interrupted: {stderr[-3000:]}"
            )
        assert time.monotonic() < deadline, "no episode was stored in time"
        time.sleep(0.05)


@contextmanager
def held_still(*pids: int) -> Iterator[None]:
    """Processes ``pids`` stopped (SIGSTOP) for the block: a fault injected meanwhile lands mid-sweep however
    fast the episodes run, instead of racing the sweep to its end. (A sweep on Ray needs its workers held
    too: they run the episodes already handed to them while the driver waits.)"""
    stopped = []
    try:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


# -- a Ray cluster with token authentication on loopback (the cluster tests of the sweep and of training) --
RAY_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


@dataclass(frozen=True)
class LoopbackCluster:
    address: str
    #: the home whose ``.ray/auth_token`` turned token authentication on
    home: Path

    def environment(self) -> dict[str, str]:
        """A shell on a machine whose home holds the token, as the docs' commands run (no Ray variables)."""
        return machine_environment(self.home)


def machine_environment(home: Path) -> dict[str, str]:
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


def stop_own_ray(processes: list[subprocess.Popen], temp_dir: str) -> None:
    """SIGTERM to each `ray start --block` we started (it stops its own node), then anything still running
    from this cluster's own Ray session directory — never `ray stop`, which stops every Ray on the machine."""
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


@contextmanager
def token_auth_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[LoopbackCluster]:
    """The docs' cluster on loopback: a `ray start --head` whose machine has a token (so Ray 2.60 turns
    token authentication on) and ``nodes - 1`` worker node processes joined with ``RAY_AUTH_MODE=token``."""
    home = Path(tempfile.mkdtemp(prefix="ray-home-"))
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay short
    environment = machine_environment(home)
    generated = subprocess.run(
        ray_cli("get-auth-token", "--generate"), env=environment, capture_output=True, text=True, timeout=120
    )
    assert generated.returncode == 0 and (home / ".ray" / "auth_token").is_file(), generated.stderr
    address = f"127.0.0.1:{free_port()}"
    common = [f"--temp-dir={temp_dir}", f"--num-cpus={cpus_per_node}", "--disable-usage-stats", "--block"]
    processes: list[subprocess.Popen] = []
    try:
        # The docs' head command (plus loopback and test-only ports); the token file turns auth on.
        head = ray_cli(
            "start", "--head", f"--port={address.split(':')[1]}", "--node-ip-address=127.0.0.1",
            "--include-dashboard=false", *common,
        )  # fmt: skip
        processes.append(subprocess.Popen(head, env=environment))
        wait_for_nodes(address, environment, 1, processes)
        # The docs' worker command, on the same machine: more node processes.
        worker = ray_cli("start", f"--address={address}", "--node-ip-address=127.0.0.1", *common)
        for _ in range(nodes - 1):
            processes.append(subprocess.Popen(worker, env={**environment, "RAY_AUTH_MODE": "token"}))
        wait_for_nodes(address, environment, nodes, processes)
        yield LoopbackCluster(address, home)
    finally:
        stop_own_ray(processes, temp_dir)
        shutil.rmtree(home, ignore_errors=True)
