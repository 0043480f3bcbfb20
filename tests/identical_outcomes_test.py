"""The harness plays the scripted expert (joint and ee), a faulty expert (its failure diagnosed) and the
expert's recorded demonstrations (with recovery noise on the executed actions) exactly as pinned in
``tests/identical_outcomes.json``: per seed the outcome, length, every other record field and every executed
action. The torch (ACT, Diffusion) and JAX policies have their own tests in their resolves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from libs.datasets.action_noise import ActionNoise
from libs.datasets.lerobot_v3 import LeRobotV3Dataset
from libs.datasets.record import record_scripted_dataset
from libs.evaluation.play.fixtures import check_pins, pinned_episode, play_pinned
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.faulty_expert import FaultyExpert
from libs.sim.scene_config import SceneConfig
from libs.sim.scripted_policy import ScriptedPolicy

SEEDS = (0, 1)


def test_scripted_expert_joint() -> None:
    env = SO101PickPlaceEnv(scene=SceneConfig().with_cameras([]))
    try:
        check_pins("scripted_joint", play_pinned(ScriptedPolicy(), env, SEEDS))
    finally:
        env.close()


def test_scripted_expert_ee() -> None:
    env = SO101PickPlaceEnv(scene=SceneConfig().with_cameras([]), action_space="ee")
    try:
        check_pins("scripted_ee", play_pinned(ScriptedPolicy(action_space="ee"), env, SEEDS))
    finally:
        env.close()


def test_faulty_expert_and_its_diagnosis() -> None:
    env = SO101PickPlaceEnv(scene=SceneConfig().with_cameras([]), max_steps=120)
    try:
        episodes = {}
        for fault in ("stall", "beside"):
            for label, episode in play_pinned(FaultyExpert(fault), env, (0,)).items():
                episodes[f"{fault} {label}"] = episode
        check_pins("faulty_expert", episodes)
    finally:
        env.close()


def test_recorded_demonstrations(tmp_path: Path) -> None:
    root = tmp_path / "demos"
    scene = SceneConfig().with_image_size(24, 32)
    record_scripted_dataset(
        root, episodes=2, seed=3, scene=scene, max_steps=80, progress=False, action_noise=ActionNoise(2.0)
    )
    dataset = LeRobotV3Dataset(root)
    episodes = {}
    for index in range(dataset.num_episodes):
        metadata = dataset.episode_metadata(index)
        frames = dataset.episode(index, ["action", "observation.state"])
        record = {"outcome": str(metadata["outcome"]), "seed": int(metadata["seed"])}
        states = np.asarray(frames["observation.state"], dtype=np.float64)
        # The labels (the expert's own actions) and the states the noisy executed actions led to.
        episodes[f"episode {index}"] = pinned_episode(
            record, [np.concatenate([a, s]) for a, s in zip(frames["action"], states, strict=True)]
        )
    check_pins("recorded_demonstrations", episodes)
