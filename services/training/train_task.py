"""One training run inside a Ray worker: the backend's train command's ``main(argv)``, its output in a log.

Ray starts a fresh worker process for each run (``max_calls=1``), so a run starts as the train command does
from a shell: its own imports, seeds and thread count, and its memory returned when it ends. The module
imports only the standard library: the runner ships it to a cluster's workers by value (the cluster's nodes
have this repo's ``libs``, ``scenes`` and ``backends``, shipped by the sweep's ``connect_ray``, but not
``services``).
"""

from __future__ import annotations

import fcntl
import importlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

#: what the driver is told about an error: the trainer's own one-line ``error:`` message
ERROR_PREFIX = "error:"
#: how long a run waits for another process still training it (the task of a killed command, until Ray
#: stops it) before it gives up
LOCK_WAIT_S = 300.0


def train_in_this_process(
    module: str, argv: list[str], log_path: str, threads: int, lock_wait_s: float = LOCK_WAIT_S
) -> dict[str, Any]:
    """Runs ``module.main(argv)`` with stdout and stderr appended to ``log_path``, holding that file's lock
    (one trainer per run folder at a time); returns where and how long it ran, its exit status and, when it
    failed, its last error line."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "a", buffering=1) as log:
        if not _locked(log, lock_wait_s):
            busy = (
                f"another process has been training into {log_path} for {lock_wait_s:.0f} s (a run of an "
                "earlier command that was killed?): stop it, then rerun"
            )
            return _result(1, busy, started, threads, log_path, argv)
        sys.stdout.flush()
        sys.stderr.flush()
        # The worker process ends after this run (max_calls=1), so its descriptors need no restoring; the
        # copies keep the lock until it does.
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        print(f"$ python -m {module} {' '.join(argv)}", flush=True)
        code = int(importlib.import_module(module).main(list(argv)) or 0)
        sys.stdout.flush()
        sys.stderr.flush()
    error = _last_error_line(Path(log_path)) if code else None
    return _result(code, error, started, threads, log_path, argv)


def _locked(log: IO[str], wait_s: float) -> bool:
    """An exclusive lock on the run's log, waited for up to ``wait_s``: the lock goes with its holder's
    process, so a trainer killed with its command frees it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(log.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(1.0, wait_s))


def _result(
    code: int, error: str | None, started: float, threads: int, log_path: str, argv: list[str]
) -> dict[str, Any]:
    return {
        "exit_code": code,
        "error": error,
        "seconds": time.monotonic() - started,
        "host": socket.gethostname(),
        "node_id": _node_id(),
        "threads": threads,
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES") or None,
        "log": log_path,
        "argv": list(argv),
    }


def _last_error_line(log_path: Path) -> str | None:
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(ERROR_PREFIX)]
    return (errors or lines or [None])[-1]


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # outside Ray (the runner's tests call this directly)
        return None
