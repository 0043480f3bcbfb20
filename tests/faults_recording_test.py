"""Fault injection for recording: ``record`` and ``rollouts`` killed (SIGKILL) at random points, the disk
filling mid-recording, a corrupt MP4. Each kill keeps every finished episode; the same command with
``--resume`` completes a dataset equal, frame by frame, to an uninterrupted recording, which the doctor
passes and LeRobot's own loader reads."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from libs.datasets import record
from libs.datasets.doctor import diagnose
from libs.datasets.lerobot_v3 import (
    INFO_PATH,
    LeRobotV3Dataset,
    LeRobotV3Writer,
    rgb_feature,
    vector_feature,
)
from libs.evaluation.play import rollouts  # noqa: F401  (run below as a subprocess: its sources must be here)

EPISODES = 6
KILLS = 5
ROLLOUT_EPISODES = 6
ROLLOUT_KILLS = 5
#: Small and short: the kills, not the episodes, are what is tested.
OPTIONS = ["--image-size", "24x32", "--max-steps", "12"]


def command(module: str, out: Path, episodes: int, *extra: str) -> list[str]:
    policy = ["--policy", "scripted"] if module.endswith("rollouts") else []
    return [
        sys.executable,
        "-m",
        module,
        *policy,
        "--out",
        str(out),
        "--episodes",
        str(episodes),
        *OPTIONS,
        *extra,
    ]


def environment() -> dict[str, str]:
    """This interpreter's environment with its import path, for a recording started as a subprocess."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def run(module: str, out: Path, episodes: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(module, out, episodes, *extra), env=environment(), capture_output=True, text=True
    )


def committed(out: Path) -> int:
    """Episodes the dataset at ``out`` holds (0 before its first is committed)."""
    info = out / INFO_PATH
    return int(json.loads(info.read_text())["total_episodes"]) if info.is_file() else 0


def contents(root: Path) -> dict[str, Any]:
    """Everything a recording stores, decoded: each episode's columns and camera frames, the episodes
    table, the statistics, info and block positions."""
    dataset = LeRobotV3Dataset(root)
    found: dict[str, Any] = {
        "info": dataset.info,
        "stats": json.loads((root / "meta/stats.json").read_text()),
        "episodes": dataset.episodes_table.to_pylist(),
        "block_positions": json.loads((root / "meta/block_positions.json").read_text()),
    }
    for episode in dataset.episode_indices:
        for name, values in dataset.episode(episode).items():
            found[f"{episode}/{name}"] = values
        for key in dataset.camera_keys:
            found[f"{episode}/{key}/frames"] = dataset.video_frames(episode, key)
    return found


def assert_same(resumed: Path, reference: Path) -> None:
    ours, wanted = contents(resumed), contents(reference)
    assert sorted(ours) == sorted(wanted)
    for name, value in wanted.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(ours[name], value), name
        else:
            assert ours[name] == value, name
    report = diagnose(resumed)
    assert report.ok, [finding.problem for finding in report.errors]


def assert_lerobot_reads(root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """LeRobot's own loader reads every episode's frames as ours does (where this resolve has LeRobot)."""
    lerobot_dataset = pytest.importorskip("lerobot.datasets.lerobot_dataset")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lerobot_home"))
    theirs = lerobot_dataset.LeRobotDataset(repo_id="local/so101lab", root=root, video_backend="pyav")
    ours = LeRobotV3Dataset(root)
    assert len(theirs) == ours.num_frames and theirs.meta.total_episodes == ours.num_episodes
    for episode in ours.episode_indices:
        frames = ours.episode(episode, ["index", "action"])
        last = len(frames["index"]) - 1
        sample = theirs[int(frames["index"][last])]
        assert int(sample["episode_index"]) == episode
        np.testing.assert_allclose(sample["action"].numpy(), frames["action"][last], atol=1e-6)
        for key in ours.rgb_keys:
            image = ours.video_frames(episode, key)[last].transpose(2, 0, 1) / 255.0
            assert np.abs(sample[key].numpy() - image).max() < 1.5 / 255


@dataclass(frozen=True)
class Reference:
    root: Path
    seconds_per_episode: float


def uninterrupted(tmp_path_factory: pytest.TempPathFactory, module: str, episodes: int) -> Reference:
    """The command run through, timing its episodes by watching their commits (startup left out)."""
    out = tmp_path_factory.mktemp("reference") / "dataset"
    process = subprocess.Popen(
        command(module, out, episodes), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    commit_times: list[float] = []
    while process.poll() is None:
        if committed(out) > len(commit_times):
            commit_times.append(time.monotonic())
        time.sleep(0.02)
    assert process.wait() == 0, process.stderr.read()[-2000:] if process.stderr else ""
    gaps = np.diff(commit_times) if len(commit_times) > 1 else [1.0]
    return Reference(out, float(np.median(gaps)))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return uninterrupted(tmp_path_factory, "libs.datasets.record", EPISODES)


def kill_at_random_points(
    module: str, out: Path, episodes: int, kills: int, reference: Reference
) -> list[int]:
    """The command killed ``kills`` times, each at a random moment of (or while committing) the episode
    after the next one it commits; the episodes held after each kill."""
    chance = random.Random(33 + kills)
    held: list[int] = []
    while len(held) < kills and committed(out) < episodes:
        before = committed(out)
        resume = ["--resume"] if held else []
        process = subprocess.Popen(
            command(module, out, episodes, *resume),
            env=environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while committed(out) <= before and process.poll() is None:
            time.sleep(0.05)
        time.sleep(chance.uniform(0.0, 0.9 * reference.seconds_per_episode))
        process.send_signal(signal.SIGKILL)
        process.wait()
        held.append(committed(out))
        assert LeRobotV3Dataset(out).num_episodes == held[-1]  # what was kept is readable
    return held


def test_record_killed_at_random_points_resumes_to_the_uninterrupted_dataset(
    tmp_path: Path, recorded: Reference, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "dataset"
    held = kill_at_random_points("libs.datasets.record", out, EPISODES, KILLS, recorded)
    assert held == sorted(held), held  # nothing finished was ever lost
    mid_recording = [count for count in held if count < EPISODES]
    assert len(mid_recording) >= 3, f"fewer than three kills landed mid-recording: {held}"
    if held[-1] < EPISODES:  # the same command without --resume says, in one line, to add it
        assert record.main(["--out", str(out), "--episodes", str(EPISODES), *OPTIONS]) == 2
        stderr = capsys.readouterr().err
        assert len(stderr.strip().splitlines()) == 1 and "add --resume" in stderr, stderr
    done = run("libs.datasets.record", out, EPISODES, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert committed(out) == EPISODES
    assert_same(out, recorded.root)
    with capsys.disabled():  # the figures, past the capture the --resume check reads
        print(f"record: {len(held)} kills, episodes held after each: {held}; resumed = uninterrupted")
    assert_lerobot_reads(out, monkeypatch, tmp_path)


def test_rollouts_killed_resume_to_the_uninterrupted_dataset(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    module = "libs.evaluation.play.rollouts"
    reference = uninterrupted(tmp_path_factory, module, ROLLOUT_EPISODES)
    out = tmp_path / "dataset"
    held = kill_at_random_points(module, out, ROLLOUT_EPISODES, ROLLOUT_KILLS, reference)
    assert held == sorted(held) and any(count < ROLLOUT_EPISODES for count in held), held
    done = run(module, out, ROLLOUT_EPISODES, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same(out, reference.root)
    print(f"rollouts: {len(held)} kills, episodes held after each: {held}; resumed = uninterrupted")


def test_disk_full_stops_in_one_line_keeping_the_finished_episodes(
    tmp_path: Path, recorded: Reference, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out, full_at = tmp_path / "dataset", 2
    save_episode = LeRobotV3Writer.save_episode

    def disk_fills(writer: LeRobotV3Writer, metadata: Any = None) -> int:
        if writer.num_episodes == full_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(writer.root))
        return save_episode(writer, metadata)

    monkeypatch.setattr(LeRobotV3Writer, "save_episode", disk_fills)
    arguments = ["--out", str(out), "--episodes", str(EPISODES), *OPTIONS]
    status = record.main(arguments)
    stderr = capsys.readouterr().err
    assert status != 0
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "--resume" in lines[0], stderr
    assert committed(out) == full_at
    monkeypatch.setattr(LeRobotV3Writer, "save_episode", save_episode)
    assert record.main([*arguments, "--resume"]) == 0
    assert_same(out, recorded.root)


def test_doctor_names_a_corrupt_mp4_in_one_finding(tmp_path: Path, recorded: Reference) -> None:
    root = tmp_path / "dataset"
    shutil.copytree(recorded.root, root)
    video = next((root / "videos").glob("*/chunk-000/file-000.mp4"))
    data = video.read_bytes()
    video.write_bytes(data[:200] + bytes(range(256)) * 20 + data[200 + 5120 :])
    errors = diagnose(root).errors
    naming = [finding for finding in errors if str(video) in finding.problem]
    assert len(naming) == 1 and naming[0].check == "video unreadable", errors
    assert "\n" not in naming[0].problem


def test_writer_resumed_after_a_kill_mid_commit_cuts_the_uncommitted_episode(tmp_path: Path) -> None:
    """The one window a random kill rarely hits: the episode's data and video renamed into place, info.json
    not yet. Resuming cuts that episode away and rewrites it, to the same files as an uninterrupted run."""
    features = {
        "observation.state": vector_feature(["a", "b"]),
        "action": vector_feature(["a", "b"]),
        "camera": rgb_feature(24, 32),
    }
    chance = np.random.default_rng(0)
    episodes = [
        (chance.normal(size=(length, 2)).astype(np.float32), chance.integers(0, 255, (length, 24, 32, 3)))
        for length in (5, 7, 4, 6)
    ]

    def write(root: Path, which: range, resume: bool = False) -> None:
        writer = LeRobotV3Writer(root, 30, features, resume=resume)
        for number in which:
            state, images = episodes[number]
            for step in range(len(state)):
                camera = images[step].astype(np.uint8)
                writer.add_frame(
                    {"observation.state": state[step], "action": state[step], "camera": camera, "task": "t"}
                )
            writer.save_episode({"seed": number})

    write(tmp_path / "reference", range(4))
    killed = tmp_path / "killed"
    write(killed, range(2))
    info_of_two = (killed / INFO_PATH).read_text()
    write(killed, range(2, 3), resume=True)
    (killed / INFO_PATH).write_text(info_of_two)  # killed just before info.json's rename
    (killed / "data/chunk-000/file-000.parquet.tmp").write_bytes(b"half written")
    write(killed, range(2, 4), resume=True)
    reference_files = sorted(
        path.relative_to(tmp_path / "reference") for path in (tmp_path / "reference").rglob("*.*")
    )
    assert sorted(path.relative_to(killed) for path in killed.rglob("*.*")) == reference_files
    for relative in reference_files:
        assert (killed / relative).read_bytes() == (tmp_path / "reference" / relative).read_bytes(), relative
