"""Fault injection for the sweep: the driver killed at random points, a Ray worker killed mid-episode, the
disk filling mid-sweep (a small tmpfs this test mounts and removes). Each ends with nothing lost and a store
that the same command resumes to exactly the episodes an uninterrupted run stores, none twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from services.eval import fixtures as processes

EPISODES = 12
KILL_POINTS = 5


def sweep_command(out: Path, *extra: str) -> list[str]:
    return processes.sweep_command(out, *extra, episodes=EPISODES)


def stored(out: Path) -> list[tuple]:
    return processes.stored(out, check_integrity=True)


def finish(out: Path, *extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        sweep_command(out, *extra), env=processes.subprocess_environment(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@dataclass(frozen=True)
class Reference:
    rows: list[tuple]
    seconds_per_episode: float


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    out = tmp_path_factory.mktemp("reference")
    config = SweepConfig(policy="scripted", episodes=EPISODES, env=EnvSettings(), serial=True, progress=False)
    started = time.monotonic()
    evaluate(config, out, argv=["reference"])
    return Reference(stored(out), (time.monotonic() - started) / EPISODES)


def test_driver_killed_at_random_points_resumes_to_the_same_episodes(tmp_path: Path, reference) -> None:
    chance = random.Random(15)
    kept_after_each_kill = []
    while len(kept_after_each_kill) < KILL_POINTS:
        before = len(stored(tmp_path))
        process = subprocess.Popen(
            sweep_command(tmp_path, "--serial"),
            env=processes.subprocess_environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.wait_for_rows(tmp_path, process, before + 1)
        # anywhere in the next episode, or while storing it
        time.sleep(chance.uniform(0.0, 0.9 * reference.seconds_per_episode))
        process.send_signal(signal.SIGKILL)
        process.wait()
        kept_after_each_kill.append(len(stored(tmp_path)))
        if kept_after_each_kill[-1] == EPISODES:
            break  # a loaded machine's slow reads let this run finish: the kills before it still count
    mid_sweep = [kept for kept in kept_after_each_kill if kept < EPISODES]
    assert len(mid_sweep) >= 2, f"fewer than two kills landed mid-sweep: {kept_after_each_kill}"
    assert kept_after_each_kill == sorted(kept_after_each_kill)  # nothing stored was ever lost
    finish(tmp_path, "--serial")
    assert stored(tmp_path) == reference.rows  # no episode lost, none twice (one row per checkpoint and seed)


def ray_workers_of(pid: int) -> list[int]:
    """Ray's episode-worker processes under ``pid`` (the sweep's own Ray, not anyone else's)."""
    children: dict[int, list[int]] = {}
    titles: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            titles[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, frontier = [], [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            frontier.append(child)
            if "EpisodeWorker" in titles.get(child, ""):
                found.append(child)
    return found


def test_a_worker_killed_mid_episode_is_retried(tmp_path: Path, reference) -> None:
    process = subprocess.Popen(
        sweep_command(tmp_path, "--workers", "1"),
        env=processes.subprocess_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.wait_for_rows(tmp_path, process, 1)
    deadline = time.monotonic() + 120
    while not (workers := ray_workers_of(process.pid)):
        assert time.monotonic() < deadline, "no Ray episode worker found under the sweep"
        time.sleep(0.1)
    for worker in workers:
        os.kill(worker, signal.SIGKILL)  # mid-episode: the worker always holds the next one
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-2000:]
    assert f"ran {EPISODES} episodes" in stdout
    assert stored(tmp_path) == reference.rows


@pytest.fixture()
def small_disk() -> Iterator[Path]:
    """A 3 MB tmpfs mounted for this test only (root), unmounted and removed afterwards."""
    mount_point = Path(tempfile.mkdtemp(prefix="sweep-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)
        mount_point.rmdir()


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def test_the_disk_filling_mid_sweep_is_one_line_and_resumes(small_disk: Path, reference) -> None:
    out = small_disk / "results"
    process = subprocess.Popen(
        sweep_command(out, "--serial"),
        env=processes.subprocess_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.wait_for_rows(out, process, 1)
    with processes.held_still(process.pid):
        filler = fill(small_disk)
    stdout, stderr = process.communicate(timeout=600)
    kept = stored(out)
    assert process.returncode == 2, stderr[-2000:]
    line = stderr.strip().splitlines()[-1]
    assert "Traceback" not in stderr
    assert line.startswith("error: ") and ("full" in line or "No space left" in line), line
    assert "run the same command" in line
    assert 1 <= len(kept) and set(kept) <= set(reference.rows)  # what was stored is intact
    filler.unlink()
    finish(out, "--serial")
    assert stored(out) == reference.rows
