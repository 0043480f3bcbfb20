"""End to end in the jax_openpi resolve: scripted demonstrations recorded in the simulator → norm stats →
a few training steps → the checkpoint loads as ``jax_openpi:<dir>`` and acts in the env in env units."""

from pathlib import Path

import numpy as np
import pytest

from backends.jax_openpi import train as train_lib
from libs.datasets.record import record_scripted_dataset
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


def test_training_and_inference_preprocess_the_same_frame_alike(run: Path, tmp_path: Path) -> None:
    """What the trainer feeds the model for frame i of a recorded episode equals what the adapter feeds
    it for the env observation at step i of the same episode replayed: states exactly, images up to the
    video codec's loss (a colour-channel swap, an off-by-one frame or a different resize would not be)."""
    from backends.jax_openpi import transforms as T
    from backends.jax_openpi.adapter import JaxOpenpiPolicy
    from backends.jax_openpi.data import load_training_arrays
    from backends.jax_openpi.train import BatchSampler
    from libs.datasets.lerobot_v3 import LeRobotV3Dataset

    policy = JaxOpenpiPolicy(run)
    dataset_root = tmp_path / "replay"
    record_scripted_dataset(dataset_root, episodes=1, seed=5, max_steps=12, progress=False)
    arrays = load_training_arrays(dataset_root, policy.config, progress=False)
    sampler = BatchSampler(arrays, policy.config, policy.norm_stats)
    dataset = LeRobotV3Dataset(dataset_root)
    actions = dataset.episode(0, ["action"])["action"]
    env = SO101PickPlaceEnv(max_steps=12)
    try:
        observation, _ = env.reset(seed=int(dataset.episode_metadata(0)["seed"]))
        for index, action in enumerate(actions):
            if index in (0, len(actions) - 1):
                trained = sampler.model_sample(np.array([index]))  # what the trainer feeds
                policy.reset()
                policy.infer(observation)
                served = policy.last_normalized_inputs()  # what the model saw, pixels in [-1, 1]
                served_state = served["observation.state"].astype(np.float32)  # the model takes float32
                np.testing.assert_array_equal(served_state, trained[T.STATE][0, :6])
                for name, key in (("overhead", T.BASE_IMAGE), ("wrist", T.WRIST_IMAGE)):
                    seen = served[f"observation.images.{name}"]
                    fed = trained[key][0].astype(np.float32) / 127.5 - 1.0
                    difference = np.abs(seen - fed).mean()
                    assert difference < 8.0 / 127.5, (name, index, difference)
                    assert np.abs(seen[..., ::-1] - fed).mean() > difference  # not a channel swap
            observation, *_ = env.step(action)
    finally:
        env.close()


def test_state_based_policy_from_recorder_to_contract_checks(tmp_path: Path) -> None:
    """environment_state through env → recorder → dataset → training → adapter → contract checks."""
    from libs.policy_api import contracts
    from libs.policy_api.types import ENVIRONMENT_STATE_KEY
    from libs.sim.scene_config import SceneConfig

    scene = SceneConfig().state_based()
    dataset = tmp_path / "state"
    record_scripted_dataset(dataset, episodes=1, seed=0, max_steps=30, scene=scene, progress=False)
    out = tmp_path / "run"
    arguments = ["--config", "so101_state_test", "--dataset", str(dataset), "--out", str(out), "--steps", "2"]
    assert train_lib.main([*arguments, "--save-interval", "2", "--compute-norm-stats"]) == 0
    policy = make_policy(f"jax_openpi:{out}")
    assert policy.spec.cameras == () and policy.spec.environment_state_dim == 9
    contracts.check_scene_matches(scene, policy.card.scene, SceneConfig.from_dict, ())
    with pytest.raises(contracts.ContractViolation, match="environment_state"):
        contracts.check_scene_matches(SceneConfig(), policy.card.scene, SceneConfig.from_dict, ())
    env = SO101PickPlaceEnv(scene, max_steps=5)
    try:
        observation, _ = env.reset(seed=3)
        assert ENVIRONMENT_STATE_KEY in observation
        contracts.check_observation(observation, policy.spec)
        policy.reset()
        chunk = policy.infer(observation)
        assert chunk.shape == (policy.spec.chunk_length, 6) and np.isfinite(chunk).all()
        contracts.check_normalized_inputs(policy.last_normalized_inputs())
        env.step(chunk[0])
    finally:
        env.close()
