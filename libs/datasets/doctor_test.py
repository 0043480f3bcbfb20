"""Each doctor finding on a dataset made to have that defect; --fix repairs stats."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from libs.datasets.doctor import diagnose, fix_stats, main
from libs.datasets.lerobot_v3 import LeRobotV3Writer
from libs.datasets.synthetic import synthetic_features, synthetic_frame, write_synthetic_dataset

STATS = "meta/stats.json"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"


def _healthy(root: Path, **kwargs: Any) -> Path:
    return write_synthetic_dataset(root, episodes=3, length=10, **kwargs)


def _edit_stats(root: Path, edit: Callable[[dict], None]) -> None:
    stats = json.loads((root / STATS).read_text())
    edit(stats)
    (root / STATS).write_text(json.dumps(stats))


def _edit_episodes(root: Path, edit: Callable[[list[dict]], None]) -> None:
    table = pq.read_table(root / EPISODES)
    rows = table.to_pylist()
    edit(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), root / EPISODES)


def _custom(root: Path, frame_edit: Callable[[int, int, dict], None], episodes: int = 3) -> Path:
    with LeRobotV3Writer(root, 30, synthetic_features(), scene_config={"cameras": []}) as writer:
        for episode in range(episodes):
            for step in range(10):
                frame = synthetic_frame(episode, step, 32, 48, False)
                frame_edit(episode, step, frame)
                writer.add_frame(frame)
            writer.save_episode({"outcome": "success"})
    return root


def test_healthy_dataset_has_no_errors(tmp_path: Path) -> None:
    report = diagnose(_healthy(tmp_path / "ds", with_depth=True))
    assert report.ok, report.findings
    assert report.checks_failed() == set()
    assert main([str(tmp_path / "ds")]) == 0


def _set_nan_mean(stats: dict) -> None:
    stats["action"]["mean"][0] = float("nan")


def _set_tiny_image_std(stats: dict) -> None:
    stats["observation.images.top"]["std"] = [[[0.002]], [[0.002]], [[0.002]]]


def _scale_action_mean(stats: dict) -> None:
    stats["action"]["mean"] = [10 * value + 5 for value in stats["action"]["mean"]]


def _image_stats_255(stats: dict) -> None:
    for name in ("min", "max", "mean", "std"):
        stats["observation.images.top"][name] = (
            np.asarray(stats["observation.images.top"][name]) * 255
        ).tolist()


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (lambda stats: stats.pop("observation.images.top"), "stats missing"),
        (_set_nan_mean, "stats non-finite"),
        (_set_tiny_image_std, "image std tiny"),
        (_scale_action_mean, "stats mismatch"),
        (_image_stats_255, "image stats scale"),
    ],
    ids=["image-stats-missing", "non-finite", "tiny-std", "mismatch", "scale-255"],
)
def test_stats_defects_are_found_and_fixed(tmp_path: Path, edit: Callable[[dict], Any], check: str) -> None:
    root = _healthy(tmp_path / "ds")
    _edit_stats(root, edit)
    report = diagnose(root)
    assert check in {f.check for f in report.errors}, report.findings
    assert main([str(root)]) == 1
    backup = fix_stats(root)
    assert (backup / "stats.json").is_file() and (backup / "episodes").is_dir()
    assert diagnose(root).ok
    assert main([str(root), "--fix"]) == 0


def test_missing_stats_file(tmp_path: Path) -> None:
    root = _healthy(tmp_path / "ds")
    (root / STATS).unlink()
    assert "stats missing" in {f.check for f in diagnose(root).errors}
    assert main([str(root), "--fix"]) == 0 and (root / STATS).is_file()


def test_stale_episode_stats_are_found(tmp_path: Path) -> None:
    root = _healthy(tmp_path / "ds")

    def stale(rows: list[dict]) -> None:
        rows[1]["stats/observation.state/mean"] = [0.0] * 6

    _edit_episodes(root, stale)
    assert "stats mismatch" in {f.check for f in diagnose(root).errors}
    fix_stats(root)
    assert diagnose(root).ok


def test_nan_actions(tmp_path: Path) -> None:
    def nan(episode: int, step: int, frame: dict) -> None:
        if episode == 1 and step == 4:
            frame["action"] = frame["action"].copy()
            frame["action"][2] = np.nan

    report = diagnose(_custom(tmp_path / "ds", nan))
    finding = next(f for f in report.errors if f.check == "non-finite frames")
    assert "episode 1" in finding.where and "[4]" in finding.problem


def test_gripper_in_zero_one_range(tmp_path: Path) -> None:
    def zero_one(episode: int, step: int, frame: dict) -> None:
        opening = frame["observation.state"][5] / 100.0
        for key in ("observation.state", "action"):
            frame[key] = frame[key].copy()
            frame[key][5] = opening

    report = diagnose(_custom(tmp_path / "ds", zero_one))
    assert {f.where for f in report.errors if f.check == "gripper range"} == {"observation.state", "action"}


def test_gripper_outside_range(tmp_path: Path) -> None:
    def radians(episode: int, step: int, frame: dict) -> None:
        frame["action"] = frame["action"].copy()
        frame["action"][5] = 150.0 + step

    assert "gripper range" in {f.check for f in diagnose(_custom(tmp_path / "ds", radians)).errors}


def test_unnamed_gripper_is_a_warning_not_a_silent_pass(tmp_path: Path) -> None:
    root = _healthy(tmp_path / "ds")
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["action"]["names"] = [f"a{i}" for i in range(len(info["features"]["action"]["names"]))]
    (root / "meta/info.json").write_text(json.dumps(info))
    report = diagnose(root)
    unchecked = [f for f in report.findings if f.check == "gripper range" and f.severity == "warning"]
    assert [f.where for f in unchecked] == ["action"] and "cannot be checked" in unchecked[0].problem


def test_frozen_actions_and_duplicates(tmp_path: Path) -> None:
    def frozen_and_copied(episode: int, step: int, frame: dict) -> None:
        if episode == 0:
            frame["action"] = np.full(6, 7.0, np.float32)
        if episode == 2:
            frame["action"] = synthetic_frame(1, step, 32, 48, False)["action"]

    report = diagnose(_custom(tmp_path / "ds", frozen_and_copied))
    warnings = {(f.check, f.where) for f in report.findings if f.severity == "warning"}
    assert ("frozen actions", "episode 0") in warnings
    assert ("duplicate episode", "episode 2") in warnings


def test_zero_length_episode(tmp_path: Path) -> None:
    root = _healthy(tmp_path / "ds")

    def empty(rows: list[dict]) -> None:
        rows[2]["length"] = 0
        rows[2]["dataset_to_index"] = rows[2]["dataset_from_index"]

    _edit_episodes(root, empty)
    assert ("zero-length episode", "episode 2") in {(f.check, f.where) for f in diagnose(root).errors}


def test_unreadable_video(tmp_path: Path) -> None:
    root = _healthy(tmp_path / "ds")
    video = next((root / "videos").rglob("*.mp4"))
    video.write_bytes(b"not a video at all" * 10)
    assert "video unreadable" in {f.check for f in diagnose(root).errors}


def test_missing_video(tmp_path: Path) -> None:
    root = _healthy(tmp_path / "ds")
    next((root / "videos").rglob("*.mp4")).unlink()
    assert "video unreadable" in {f.check for f in diagnose(root).errors}


def test_video_of_wrong_length(tmp_path: Path) -> None:
    root = _healthy(tmp_path / "ds")

    def shorten(rows: list[dict]) -> None:
        key = "videos/observation.images.top/to_timestamp"
        rows[1][key] = rows[1][key] - 3 / 30

    _edit_episodes(root, shorten)
    finding = next(f for f in diagnose(root).errors if f.check == "video length")
    assert "episode 1" in finding.where


def test_missing_camera_config(tmp_path: Path) -> None:
    root = _healthy(tmp_path / "ds")
    (root / "meta/scene.json").unlink()
    report = diagnose(root)
    assert report.ok
    assert "camera config" in {f.check for f in report.findings if f.severity == "warning"}


def test_not_a_dataset(tmp_path: Path) -> None:
    report = diagnose(tmp_path)
    assert [f.check for f in report.errors] == ["layout"]
    assert main([str(tmp_path), "--fix"]) == 1
