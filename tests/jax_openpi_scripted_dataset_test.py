"""End to end in the jax_openpi resolve: scripted demonstrations recorded in the simulator → norm stats →
a few training steps → the checkpoint loads as ``jax_openpi:<dir>`` and acts in the env in env units."""

from pathlib import Path

import numpy as np
import pytest

from backends.jax_openpi import train as train_lib
from libs.datasets.record import record_scripted_dataset
from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import make_policy
from libs.sim.env import SO101PickPlaceEnv


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    dataset = tmp_path_factory.mktemp("data") / "scripted"
    record_scripted_dataset(dataset, episodes=1, seed=0, max_steps=30, progress=False)
    out = tmp_path_factory.mktemp("run")
    arguments = ["--config", "so101_test", "--dataset", str(dataset), "--out", str(out), "--steps", "2"]
    assert train_lib.main(arguments) == 2  # refused: no norm stats
    assert train_lib.main([*arguments, "--save-interval", "2", "--compute-norm-stats"]) == 0
    assert (out / "assets" / "norm_stats.json").is_file()
    return out


def test_checkpoint_carries_the_datasets_scene_and_stats(run: Path) -> None:
    step = run / "checkpoints" / "000002"
    for name in ("config.json", "assets/norm_stats.json", "card.json"):
        assert (step / name).is_file(), name
    card = CheckpointCard.read(step)
    assert card is not None and card.scene is not None and card.stats is not None and card.step == 2


def test_trained_checkpoint_acts_in_the_env(run: Path) -> None:
    policy = make_policy(f"jax_openpi:{run}")  # a run folder resolves to its latest step
    env = SO101PickPlaceEnv(max_steps=5)
    try:
        observation, _ = env.reset(seed=3)
        assert set(policy.spec.observation_keys) <= set(observation)
        policy.reset()
        chunk = policy.infer(observation)
        assert chunk.shape == (50, 6) and chunk.dtype == np.float32 and np.isfinite(chunk).all()
        # de-normalised into env units: joints in degrees around the current state, gripper in 0–100 units
        assert np.abs(chunk[:, :5] - observation["observation.state"][:5]).max() < 1000
        env.step(chunk[0])
        assert policy.card.scene == env.scene.to_dict()
    finally:
        env.close()
