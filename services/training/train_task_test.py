"""A training task's guard: one trainer per run folder at a time (its success path runs on Ray in
tests/ray_cluster_training_test.py)."""

from __future__ import annotations

import fcntl
from pathlib import Path

from services.training.train_task import train_in_this_process


def test_a_run_still_trained_by_another_process_is_not_trained_twice(tmp_path: Path) -> None:
    # A task of a killed command may train on until Ray stops it: a rerun's task for the same run waits
    # for its lock on the run's log, and gives up in one line instead of writing the same folder.
    log = tmp_path / "act-25.train.log"
    with open(log, "a") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        result = train_in_this_process("no.such.trainer", ["--steps", "4"], str(log), 1, lock_wait_s=0.2)
    assert result["exit_code"] == 1 and "\n" not in result["error"]
    assert result["error"].startswith(f"another process has been training into {log} for 0 s")
    assert log.read_text() == ""  # nothing imported, nothing written
