"""The harness plays tiny LeRobot policies (ACT executing 4 of a 10-action chunk, Diffusion with a 2-step
observation history) exactly as pinned in ``tests/identical_outcomes.json``: per seed the record and every
executed action, one episode at a time and in lockstep (one batched inference for the episodes due). The
models are one training step from random initialisation on two scripted demonstrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from backends.torch_lerobot.adapter import LeRobotPolicy
from backends.torch_lerobot.train import train_policy
from libs.datasets.record import record_scripted_dataset
from libs.evaluation.play.fixtures import SMALL_ACT, check_policy_pins
from libs.sim.scene_config import SceneConfig

torch.set_num_threads(1)  # one thread: the same float summation order on every run
EPISODE_STEPS = 20
SEEDS = (0, 1)
POLICIES: dict[str, tuple[str, dict[str, Any]]] = {
    "act": ("act", {**SMALL_ACT, "chunk_size": 10, "n_action_steps": 4}),
    "diffusion": ("diffusion", {"down_dims": (32, 64, 128), "num_inference_steps": 4}),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pinned") / "demos"
    scene = SceneConfig().with_image_size(48, 64)
    record_scripted_dataset(root, episodes=2, seed=0, scene=scene, max_steps=30, progress=False)
    return root


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_lerobot_policy_outcomes_and_actions(name: str, dataset: Path) -> None:
    policy_type, overrides = POLICIES[name]
    run = dataset.parent / f"run_{name}"
    checkpoint = train_policy(
        policy_type, dataset, run, steps=1, batch_size=2, policy_overrides=overrides, log_freq=1
    )[-1]
    policy = LeRobotPolicy(checkpoint)
    scene = SceneConfig.from_dict(policy.card.scene)
    scene = scene.with_cameras([camera.name for camera in policy.spec.cameras])
    check_policy_pins(f"lerobot_{name}", policy, scene, SEEDS, EPISODE_STEPS)
