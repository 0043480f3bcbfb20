"""Converters write new datasets, never touch their source, and round-trip."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from libs.datasets import convert
from libs.datasets.doctor import diagnose
from libs.datasets.lerobot_v3 import DatasetError, LeRobotV3Dataset
from libs.datasets.synthetic import write_synthetic_dataset


def _digest(root: Path) -> str:
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_synthetic_dataset(
        tmp_path / "src", episodes=3, length=6, outcomes=["success", "timeout", "success"]
    )


def _columns(root: Path, key: str) -> np.ndarray:
    dataset = LeRobotV3Dataset(root)
    return np.concatenate([dataset.episode(i)[key] for i in dataset.episode_indices])


def test_gripper_round_trip(source: Path, tmp_path: Path) -> None:
    before = _digest(source)
    zero_one = convert.convert_gripper(source, tmp_path / "01", "0-1", progress=False)
    assert _digest(source) == before
    assert _columns(zero_one, "action")[:, 5].max() <= 1.0 + 1e-6
    assert diagnose(zero_one).ok  # declared 0-1, so the doctor accepts it
    assert LeRobotV3Dataset(zero_one).features["action"]["info"]["gripper_range"] == "0-1"
    with pytest.raises(DatasetError, match="already"):
        convert.convert_gripper(zero_one, tmp_path / "again", "0-1", progress=False)
    back = convert.convert_gripper(zero_one, tmp_path / "100", "0-100", progress=False)
    for key in ("observation.state", "action"):
        np.testing.assert_allclose(_columns(back, key), _columns(source, key), atol=1e-4)
    assert "info" not in LeRobotV3Dataset(back).features["action"] or (
        LeRobotV3Dataset(back).features["action"]["info"].get("gripper_range") == "0-100"
    )
    assert LeRobotV3Dataset(back).outcomes == LeRobotV3Dataset(source).outcomes


def test_openpi_round_trip(source: Path, tmp_path: Path) -> None:
    openpi = convert.convert_to_openpi(source, tmp_path / "openpi", progress=False)
    dataset = LeRobotV3Dataset(openpi)
    assert {"image", "state", "actions"} <= set(dataset.features)
    assert dataset.features["image"]["dtype"] == "video"
    assert _columns(openpi, "actions")[:, 5].max() <= 1.0 + 1e-6
    back = convert.convert_from_openpi(openpi, tmp_path / "back", progress=False)
    restored = LeRobotV3Dataset(back)
    assert set(restored.features) == set(LeRobotV3Dataset(source).features)
    np.testing.assert_allclose(_columns(back, "action"), _columns(source, "action"), atol=1e-4)
    original = LeRobotV3Dataset(source).video_frames(1, "observation.images.top").astype(int)
    assert np.abs(restored.video_frames(1, "observation.images.top").astype(int) - original).mean() < 3


def test_merge_split_filter(source: Path, tmp_path: Path) -> None:
    other = write_synthetic_dataset(
        tmp_path / "other", episodes=2, length=5, outcomes=["missed_goal", "success"]
    )
    before = _digest(source)
    merged = LeRobotV3Dataset(convert.merge([source, other], tmp_path / "merged", progress=False))
    assert merged.num_episodes == 5 and merged.num_frames == (6 + 7 + 8) + (5 + 6)
    assert list(merged.outcomes.values()) == ["success", "timeout", "success", "missed_goal", "success"]
    assert diagnose(merged.root).ok
    parts = convert.split(merged.root, tmp_path / "parts", {"train": 0.6, "val": 0.4}, progress=False)
    sizes = {name: LeRobotV3Dataset(path).num_episodes for name, path in parts.items()}
    assert sizes == {"train": 3, "val": 2}
    assert sum(LeRobotV3Dataset(path).num_frames for path in parts.values()) == merged.num_frames
    kept = LeRobotV3Dataset(convert.filter_episodes(source, tmp_path / "ok", keep="success", progress=False))
    assert kept.num_episodes == 2 and set(kept.outcomes.values()) == {"success"}
    listed = convert.filter_episodes(
        source, tmp_path / "listed", episodes=[0, 2], exclude=[2], progress=False
    )
    np.testing.assert_array_equal(
        LeRobotV3Dataset(listed).episode(0)["action"], LeRobotV3Dataset(source).episode(0)["action"]
    )
    assert _digest(source) == before
    with pytest.raises(DatasetError, match="source"):
        convert.filter_episodes(source, source, keep="success", progress=False)
    with pytest.raises(DatasetError, match="no episode"):
        convert.filter_episodes(source, tmp_path / "none", keep="never_picked_up", progress=False)


def test_cli(source: Path, tmp_path: Path) -> None:
    assert convert.main(["filter", str(source), str(tmp_path / "f"), "--exclude-episodes", "1"]) == 0
    assert LeRobotV3Dataset(tmp_path / "f").num_episodes == 2
    assert convert.main(["split", str(source), str(tmp_path / "s"), "--fractions", "a=0.5,b=0.5"]) == 0
    assert convert.main(["filter", str(source), str(tmp_path / "g"), "--episodes", "9"]) == 2


def test_joint_to_ee_and_rerecord(tmp_path: Path) -> None:
    from libs.datasets.record import record_scripted_dataset
    from libs.sim.scene_config import SceneConfig

    scene = SceneConfig().with_image_size(32, 48)
    record_scripted_dataset(tmp_path / "joint", episodes=1, scene=scene, max_steps=25, progress=False)
    ee = LeRobotV3Dataset(convert.convert_joint_to_ee(tmp_path / "joint", tmp_path / "ee", progress=False))
    actions = ee.episode(0)["action"]
    from libs.sim.layout import EE_ACTION_NAMES, EE_TAIL_DISTANCE_M

    assert actions.shape[1] == 7 and ee.features["action"]["names"] == list(EE_ACTION_NAMES)
    # the tail lies EE_TAIL_DISTANCE_M behind the gripper, and no dimension is constant (mean/std safe)
    np.testing.assert_allclose(
        np.linalg.norm(actions[:, :3] - actions[:, 3:6], axis=1), EE_TAIL_DISTANCE_M, atol=1e-5
    )
    assert ee.stats is not None and np.all(ee.stats["action"]["std"][:6] > 1e-3)
    np.testing.assert_array_equal(
        actions[:, 6], LeRobotV3Dataset(tmp_path / "joint").episode(0)["action"][:, 5]
    )

    new_scene = convert._scene_for_rerecord(
        tmp_path / "joint",
        type("Args", (), {"scene": None, "image_size": "48x64", "depth": True, "fovy": ["overhead=58"]})(),
    )
    again = LeRobotV3Dataset(
        convert.rerecord(tmp_path / "joint", tmp_path / "again", new_scene, progress=False)
    )
    source = LeRobotV3Dataset(tmp_path / "joint")
    np.testing.assert_allclose(
        again.episode(0)["observation.state"], source.episode(0)["observation.state"], atol=1e-3
    )
    assert "observation.images.overhead_depth" in again.features
    assert again.video_frames(0, "observation.images.overhead").shape[1:3] == (48, 64)
    differences = SceneConfig.from_dict(again.scene_config).differences(
        SceneConfig.from_dict(source.scene_config)
    )
    assert any("fovy_deg" in line for line in differences)


def test_float_array_depth_is_flagged_and_converted_to_lerobot_depth_maps(tmp_path: Path) -> None:
    from libs.datasets.lerobot_v3 import LeRobotV3Writer
    from libs.datasets.synthetic import synthetic_features, synthetic_frame

    # The layout before LeRobot depth maps: a float32 (H, W) array in metres.
    features = synthetic_features(32, 48)
    key = "observation.images.top_depth"
    features[key] = {
        "dtype": "float32", "shape": [32, 48], "names": ["height", "width"],
        "info": {"modality": "depth", "unit": "m"},
    }  # fmt: skip
    with LeRobotV3Writer(tmp_path / "old", 30, features) as writer:
        for step in range(5):
            frame = synthetic_frame(0, step, 32, 48, with_depth=True)
            writer.add_frame(frame)
        writer.save_episode({"outcome": "success", "seed": 0})
    report = diagnose(tmp_path / "old")
    assert "depth layout" in report.checks_failed()
    assert any("convert -- depth" in finding.fix for finding in report.errors)

    new = LeRobotV3Dataset(convert.convert_depth(tmp_path / "old", tmp_path / "new", progress=False))
    assert new.depth_keys == [key] and new.features[key]["info"]["depth_unit"] == "mm"
    old = LeRobotV3Dataset(tmp_path / "old").episode(0)[key]
    np.testing.assert_allclose(new.video_frames(0, key), old, atol=0.5e-3)  # to the millimetre
    assert diagnose(tmp_path / "new").ok
