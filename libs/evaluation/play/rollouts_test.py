"""Rollouts are played as the sweep plays episodes: contract checks, the checkpoint's training scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from libs.datasets.lerobot_v3 import LeRobotV3Dataset
from libs.evaluation.play.rollouts import main, record_rollouts
from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import register_backend
from libs.policy_api.types import PolicySpec
from libs.sim.env import HOME_JOINTS
from libs.sim.scene_config import SceneConfig
from libs.sim.scripted_policy import ScriptedPolicy


class GoesWildPolicy:
    """Holds the arm at home for one chunk, then asks for a joint angle far outside the range."""

    spec = PolicySpec(cameras=(), chunk_length=5, n_action_steps=5)

    def __init__(self) -> None:
        self.chunks = 0

    def reset(self) -> None:
        self.chunks = 0

    def infer(self, observation) -> np.ndarray:
        self.chunks += 1
        chunk = np.repeat(HOME_JOINTS[None, :], 5, axis=0).astype(np.float32)
        if self.chunks > 1:
            chunk[:, 1] = -2455.0
        return chunk


def test_a_rollout_that_breaks_the_contract_is_stopped_and_recorded_as_such(tmp_path: Path) -> None:
    register_backend("test_goes_wild", lambda argument: GoesWildPolicy())
    summary = record_rollouts(
        tmp_path / "ds", "test_goes_wild:x", image_size="24x32", episodes=1, max_steps=40, progress=False
    )
    assert summary.outcomes == {"contract_violation": 1}
    dataset = LeRobotV3Dataset(tmp_path / "ds")
    assert dataset.outcomes == {0: "contract_violation"}
    assert dataset.episode_metadata(0)["length"] == 5  # the safe chunk was executed, the unsafe one never


def test_rollouts_record_in_the_checkpoint_training_scene(tmp_path: Path) -> None:
    trained_in = SceneConfig().with_image_size(24, 32)
    register_backend(
        "test_trained_small",
        lambda argument: ScriptedPolicy(),
        read_card=lambda argument: CheckpointCard(scene=trained_in.to_dict()),
    )
    record_rollouts(tmp_path / "ds", "test_trained_small:ckpt", episodes=1, max_steps=6, progress=False)
    dataset = LeRobotV3Dataset(tmp_path / "ds")
    assert SceneConfig.from_dict(dataset.scene_config) == trained_in  # not the bench's 96 x 128 default
    assert dataset.features["observation.images.overhead"]["shape"][:2] == [24, 32]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--episodes", "1", "--max-steps", "4", "--image-size", "32x48"]
    assert (
        main(["--policy", "scripted", "--out", str(tmp_path / "b"), "--images", *common, "--threads", "1"])
        == 0
    )
    assert capsys.readouterr().out.startswith("threads: 1 per model (set by --threads; ")
    assert LeRobotV3Dataset(tmp_path / "b").features["observation.images.wrist"]["dtype"] == "image"
    assert main(["--policy", "nonsense:x", "--out", str(tmp_path / "c"), *common]) == 2
    assert "unknown policy backend" in capsys.readouterr().err
