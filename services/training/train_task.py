"""One training run inside a Ray worker: the backend's train command's ``main(argv)``, its output in a log.

Ray starts a fresh worker process for each run (``max_calls=1``), so a run starts as the train command does
from a shell: its own imports, seeds and thread count, and its memory returned when it ends. The module
imports only the standard library: the runner ships it to a cluster's workers by value (the cluster's nodes
have this repo's ``libs``, ``scenes`` and ``backends``, shipped by the sweep's ``connect_ray``, but not
``services``).
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

#: what the driver is told about an error: the trainer's own one-line ``error:`` message
ERROR_PREFIX = "error:"


def train_in_this_process(module: str, argv: list[str], log_path: str, threads: int) -> dict[str, Any]:
    """Runs ``module.main(argv)`` with stdout and stderr appended to ``log_path``; returns where and how
    long it ran, its exit status and, when it failed, its last error line."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "a", buffering=1) as log:
        sys.stdout.flush()
        sys.stderr.flush()
        # The worker process ends after this run (max_calls=1), so its descriptors need no restoring.
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        print(f"$ python -m {module} {' '.join(argv)}", flush=True)
        code = importlib.import_module(module).main(list(argv))
        sys.stdout.flush()
        sys.stderr.flush()
    return {
        "exit_code": int(code or 0),
        "error": _last_error_line(Path(log_path)) if code else None,
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
