"""The visual success classifier learns success from simulator-labelled frames, reports precision/recall on
held-out episodes, and works as a keep filter (``classifier:DIR``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends.torch_lerobot.success_classifier import SuccessClassifier, main, metrics_of, train_classifier
from libs.datasets.convert import filter_episodes
from libs.datasets.lerobot_v3 import DatasetError, LeRobotV3Dataset, LeRobotV3Writer
from libs.datasets.synthetic import synthetic_features, synthetic_frame


def _labelled_dataset(root: Path, episodes: int = 16, seed: int = 0) -> Path:
    """Success episodes end with a blue block inside a dark bowl in the image centre; failures end with
    the block elsewhere on the table."""
    rng = np.random.default_rng(seed)
    with LeRobotV3Writer(root, 30, synthetic_features(), scene_config={"cameras": []}) as writer:
        for episode in range(episodes):
            success = episode % 2 == 0
            for step in range(6):
                frame = synthetic_frame(episode, step, 32, 48, False)
                image = np.full((32, 48, 3), 150, np.uint8) + rng.integers(0, 20, (32, 48, 3), dtype=np.uint8)
                image[10:22, 16:32] = (30, 30, 60)  # the bowl
                if success and step >= 2:
                    row, col = 13 + rng.integers(0, 4), 20 + rng.integers(0, 6)
                else:
                    row, col = rng.choice([2, 24]), rng.integers(0, 40)
                image[row : row + 6, col : col + 6] = (20, 40, 230)
                frame["observation.images.top"] = image
                writer.add_frame(frame)
            writer.save_episode({"outcome": "success" if success else "missed_goal", "seed": episode})
    return root


def test_metrics() -> None:
    metrics = metrics_of([True, True, False, False], [True, False, True, False])
    assert (metrics.precision, metrics.recall, metrics.accuracy) == (0.5, 0.5, 0.5)


def test_train_report_and_keep_filter(tmp_path: Path) -> None:
    data = _labelled_dataset(tmp_path / "data")
    classifier, metrics = train_classifier(
        [data], tmp_path / "clf", epochs=40, holdout_fraction=0.25, progress=False
    )
    assert metrics.episodes == 4 and metrics.positives == 2
    assert metrics.precision == 1.0 and metrics.recall == 1.0, metrics
    assert (tmp_path / "clf" / "metrics.json").is_file()
    loaded = SuccessClassifier.load(tmp_path / "clf")
    assert loaded.config == classifier.config

    fresh = _labelled_dataset(tmp_path / "fresh", episodes=6, seed=1)
    kept = LeRobotV3Dataset(
        filter_episodes(fresh, tmp_path / "kept", keep=f"classifier:{tmp_path / 'clf'}", progress=False)
    )
    assert set(kept.outcomes.values()) == {"success"} and kept.num_episodes >= 2
    assert main(["evaluate", "--model", str(tmp_path / "clf"), "--dataset", str(fresh)]) == 0


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a success classifier"):
        SuccessClassifier.load(tmp_path)
    data = _labelled_dataset(tmp_path / "data", episodes=3)
    with pytest.raises(DatasetError, match="at least 4 episodes"):
        train_classifier([data], tmp_path / "clf", progress=False)
