"""Stopping a sweep from outside: its launcher (``./pants run``) killed, SIGTERM, Ctrl-C. Each stops the
sweep and every process it started (Ray included), keeps the stored episodes, and the same command resumes
to the episodes an uninterrupted run stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from services.eval import fixtures as processes

# Enough that a sweep interrupted after its first stored episode still has episodes left to run, even with
# each of two Ray workers holding two episodes in flight on a fast machine.
EPISODES = 12
#: stands in for ``./pants run`` from a terminal: it starts the sweep as its child and waits for it. SIGHUP
#: is set back to its default first: under ``nohup`` (a CI started in the background) it would be inherited
#: as ignored, which the sweep reads as "detached on purpose" and stops watching its launcher.
LAUNCHER = (
    "import signal, subprocess, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
    "sys.exit(subprocess.Popen(sys.argv[1:]).wait())"
)


def sweep_command(out: Path, *extra: str) -> list[str]:
    return processes.sweep_command(out, *extra, episodes=EPISODES)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def descendants_of(pid: int) -> set[int]:
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        for child in children_of(frontier.pop()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until_gone(pids: set[int], timeout_s: float = 120) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.2)
    return {pid for pid in pids if alive(pid)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[tuple]:
    out = tmp_path_factory.mktemp("reference")
    config = SweepConfig(policy="scripted", episodes=EPISODES, env=EnvSettings(), serial=True, progress=False)
    evaluate(config, out, argv=["reference"])
    return processes.stored(out)


def resume_and_compare(out: Path, reference: list[tuple], *extra: str) -> None:
    kept = len(processes.stored(out))
    assert 1 <= kept < EPISODES
    finished = subprocess.run(
        sweep_command(out, *extra), env=processes.subprocess_environment(), capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"ran {EPISODES - kept} episodes, {kept} already done" in finished.stdout
    assert processes.stored(out) == reference


def test_killing_the_launcher_stops_the_sweep_and_its_ray_processes(tmp_path: Path, reference) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, *sweep_command(tmp_path, "--workers", "1")],
        env=processes.subprocess_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.wait_for_rows(tmp_path, launcher)
    (sweep,) = children_of(launcher.pid)
    # Held still while its processes are listed and its launcher killed: on an idle machine the scripted
    # episodes would otherwise all be stored before the sweep notices (it looks every LAUNCHER_POLL_S).
    with processes.held_still(sweep):
        started = descendants_of(sweep) | {sweep}  # Ray's GCS, raylet and workers, started by the sweep
        assert len(started) > 2, "the sweep should be running on Ray"
        with processes.held_still(*(started - {sweep})):  # its worker would run the queued episodes
            launcher.kill()  # what killing `./pants run` does to the sweep: its launcher is gone
            launcher.wait()
    assert wait_until_gone(started) == set(), "processes the sweep started are still running"
    resume_and_compare(tmp_path, reference, "--serial")  # the store resumes however the rest runs


@pytest.mark.parametrize(("stop_with", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_stop_the_sweep_in_one_line(tmp_path: Path, reference, stop_with, status) -> None:
    process = subprocess.Popen(
        sweep_command(tmp_path, "--serial"),
        env=processes.subprocess_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.wait_for_rows(tmp_path, process)
    process.send_signal(stop_with)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr[-2000:]
    (line,) = (text for text in stdout.splitlines() if text.startswith("interrupted"))
    assert f"{tmp_path}" in line and "run the same command to resume" in line
    assert "Traceback" not in stderr
    resume_and_compare(tmp_path, reference, "--serial")
