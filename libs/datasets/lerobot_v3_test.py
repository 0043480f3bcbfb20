from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from libs.datasets import stats as stats_lib
from libs.datasets.lerobot_v3 import (
    CODEBASE_VERSION,
    DatasetError,
    LeRobotV3Dataset,
    LeRobotV3Writer,
    recompute_stats,
)
from libs.datasets.synthetic import TASK, synthetic_features, synthetic_frame, write_synthetic_dataset


@pytest.mark.parametrize("use_video", [True, False])
def test_round_trip_values(tmp_path: Path, use_video: bool) -> None:
    root = write_synthetic_dataset(
        tmp_path / "ds", episodes=2, length=8, use_video=use_video, with_depth=True
    )
    dataset = LeRobotV3Dataset(root)
    assert dataset.num_episodes == 2 and dataset.num_frames == 8 + 9
    assert dataset.episode_indices == [0, 1]
    assert dataset.tasks == [TASK]
    assert dataset.scene_config is not None and dataset.scene_config["cameras"][0]["name"] == "top"
    episode = dataset.episode(1)
    expected = [synthetic_frame(1, step, 32, 48, True) for step in range(9)]
    np.testing.assert_array_equal(
        episode["observation.state"], np.stack([f["observation.state"] for f in expected])
    )
    np.testing.assert_array_equal(episode["action"], np.stack([f["action"] for f in expected]))
    np.testing.assert_array_equal(episode["index"], np.arange(8, 17))
    np.testing.assert_array_equal(episode["frame_index"], np.arange(9))
    np.testing.assert_allclose(episode["timestamp"], np.arange(9) / 30, atol=1e-6)
    assert episode["observation.images.top_depth"].shape == (9, 32, 48)
    frames = dataset.video_frames(1, "observation.images.top")
    assert frames.shape == (9, 32, 48, 3) and frames.dtype == np.uint8
    expected_grey = np.array([(20 * step + 40) % 256 for step in range(9)])
    tolerance = 4 if use_video else 0
    assert np.abs(frames[:, -1, -1, 1].astype(int) - expected_grey).max() <= tolerance
    assert dataset.outcomes == {0: "success", 1: "success"}


def test_info_and_stats_layout_match_lerobot(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "ds", episodes=2, length=6, with_depth=True)
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == CODEBASE_VERSION
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["splits"] == {"train": "0:2"} and info["total_tasks"] == 1
    video = info["features"]["observation.images.top"]
    assert video["dtype"] == "video" and video["info"]["video.fps"] == 30
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert key in info["features"]
    stats = json.loads((root / "meta/stats.json").read_text())
    image_mean = np.asarray(stats["observation.images.top"]["mean"])
    assert image_mean.shape == (3, 1, 1) and 0 <= image_mean.min() <= image_mean.max() <= 1
    assert np.asarray(stats["observation.images.top_depth"]["std"]).shape == (1, 1, 1)
    for key in stats_lib.STAT_KEYS:
        assert key in stats["action"]
    assert stats["action"]["count"] == [13]
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet")
    for column in (
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "dataset_from_index",
        "videos/observation.images.top/from_timestamp",
        "stats/action/q99",
        "meta/episodes/file_index",
        "outcome",
    ):
        assert column in episodes.column_names
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.column("task").to_pylist() == [TASK] and tasks.column("task_index").to_pylist() == [0]
    # LeRobot reads this file with pandas and looks tasks up by the "task" index.
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]


def test_recomputed_stats_match_written(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "ds", episodes=2, length=6, use_video=False)
    dataset = LeRobotV3Dataset(root)
    recomputed, per_episode = recompute_stats(dataset)
    assert len(per_episode) == 2
    written = dataset.stats
    assert written is not None
    for key in ("action", "observation.state", "observation.images.top"):
        np.testing.assert_allclose(recomputed[key]["mean"], written[key]["mean"], rtol=1e-6)
        np.testing.assert_allclose(recomputed[key]["std"], written[key]["std"], rtol=1e-6)


def test_aggregate_matches_pooled_statistics() -> None:
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(50, 3)), rng.normal(2.0, 3.0, size=(70, 3))
    merged = stats_lib.aggregate(
        [{"x": stats_lib.vector_stats(first)}, {"x": stats_lib.vector_stats(second)}]
    )
    pooled = np.concatenate([first, second])
    np.testing.assert_allclose(merged["x"]["mean"], pooled.mean(axis=0))
    np.testing.assert_allclose(merged["x"]["std"], pooled.std(axis=0))
    assert merged["x"]["count"].tolist() == [120]


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a LeRobot dataset"):
        LeRobotV3Dataset(tmp_path)
    writer = LeRobotV3Writer(tmp_path / "w", 30, synthetic_features())
    frame = synthetic_frame(0, 0, 32, 48, False)
    with pytest.raises(DatasetError, match="shape"):
        writer.add_frame({**frame, "action": np.zeros(5, np.float32)})
    with pytest.raises(DatasetError, match="missing feature"):
        writer.add_frame({key: value for key, value in frame.items() if key != "action"})
    with pytest.raises(DatasetError, match="no frames"):
        writer.save_episode()
    root = write_synthetic_dataset(tmp_path / "exists", episodes=1, length=3)
    with pytest.raises(DatasetError, match="already exists"):
        LeRobotV3Writer(root, 30, synthetic_features())
    with pytest.raises(DatasetError, match="episode 7"):
        LeRobotV3Dataset(root).episode(7)


def test_cleared_episode_is_not_written(tmp_path: Path) -> None:
    with LeRobotV3Writer(tmp_path / "ds", 30, synthetic_features()) as writer:
        for step in range(4):
            writer.add_frame(synthetic_frame(0, step, 32, 48, False))
        writer.clear_episode()
        for step in range(5):
            writer.add_frame(synthetic_frame(1, step, 32, 48, False))
        writer.save_episode()
    dataset = LeRobotV3Dataset(tmp_path / "ds")
    assert dataset.num_frames == 5
    assert len(dataset.video_frames(0, "observation.images.top")) == 5
