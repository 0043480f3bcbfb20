"""Test support for the sweep as a process: the command a user runs, its store read as another process
reads it while the sweep writes, and a sweep held still while a fault is injected. Shared by the fault,
interrupt and cluster tests (kept out of any test module, as the import rules ask)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
