"""`doctor --fix` repairs broken stats and LeRobot's own LeRobotDataset then loads the repaired dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from libs.datasets.doctor import diagnose, main
from libs.datasets.synthetic import write_synthetic_dataset


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lerobot_home"))


def test_fix_then_lerobot_loads(tmp_path: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = write_synthetic_dataset(tmp_path / "ds", episodes=2, length=8)
    stats_path = root / "meta/stats.json"
    stats = json.loads(stats_path.read_text())
    good_std = np.asarray(stats["observation.images.top"]["std"])
    stats["observation.images.top"]["std"] = [[[0.002]], [[0.002]], [[0.002]]]
    del stats["action"]
    stats_path.write_text(json.dumps(stats))
    assert not diagnose(root).ok
    assert main([str(root), "--fix"]) == 0

    dataset = LeRobotDataset(
        "local/fixed", root=root, delta_timestamps={"action": [0.0, 1 / 30]}, video_backend="pyav"
    )
    image_std = dataset.meta.stats["observation.images.top"]["std"]
    np.testing.assert_allclose(image_std, good_std, atol=0.03)
    assert "action" in dataset.meta.stats and dataset.meta.stats["action"]["mean"].shape == (6,)
    sample = dataset[3]
    assert tuple(sample["action"].shape) == (2, 6)
    assert len(list((root / "meta").glob("backup-*/stats.json"))) == 1
