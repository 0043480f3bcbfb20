"""The state-based path at toy size: a dataset without cameras and with ``observation.environment_state``
→ norm stats (with an environment_state entry) → training → ``jax_openpi:<dir>`` → the contract checks."""

import json
from pathlib import Path

import numpy as np
import pytest

from backends.jax_openpi import train as train_lib
from backends.jax_openpi.adapter import JaxOpenpiPolicy
from backends.jax_openpi.checkpoints import CheckpointError
from backends.jax_openpi.config import get_config
from backends.jax_openpi.data import DatasetInputError, load_training_arrays
from backends.jax_openpi.fixtures import write_tiny_dataset
from libs.policy_api import contracts
from libs.policy_api.registry import make_policy
from libs.policy_api.types import ENVIRONMENT_STATE_KEY, STATE_KEY

CONFIG = get_config("so101_state_test")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "state"
    return write_tiny_dataset(root, episodes=2, length=12, cameras=(), environment_state=True)


@pytest.fixture(scope="module")
def run(dataset: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    arguments = ["--config", CONFIG.name, "--dataset", str(dataset), "--out", str(out), "--steps", "4"]
    assert train_lib.main([*arguments, "--save-interval", "2", "--compute-norm-stats"]) == 0
    return out


def observation(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    half_yaw = rng.uniform(-0.3, 0.3)
    environment = [*rng.uniform(-0.05, 0.05, 3), np.cos(half_yaw), 0, 0, np.sin(half_yaw), 0.02, -0.03]
    return {
        STATE_KEY: np.array([5, -10, 20, 0, 3, 80], np.float32),
        ENVIRONMENT_STATE_KEY: np.asarray(environment, np.float32),
        "task": "put the block in the bowl",
    }


def test_norm_stats_cover_the_environment_state(run: Path) -> None:
    payload = json.loads((run / "assets" / "norm_stats.json").read_text())["norm_stats"]
    assert set(payload) == {"state", "actions", "environment_state"}
    assert len(payload["environment_state"]["mean"]) == 9
    # floors in the environment state's own units: 1 cm for positions, 0.1 for quaternion components (the
    # fixture's block only yaws, so x and y of its quaternion never move)
    std = payload["environment_state"]["std"]
    assert std[4] == pytest.approx(0.1) and std[5] == pytest.approx(0.1)
    assert min(std) >= 0.01


def test_state_based_checkpoint_reads_the_environment_state_and_no_camera(run: Path) -> None:
    policy = make_policy(f"jax_openpi:{run}")
    spec = policy.spec
    assert spec.cameras == () and spec.environment_state_dim == 9
    assert spec.observation_keys == (STATE_KEY, ENVIRONMENT_STATE_KEY)
    assert spec.chunk_length == CONFIG.model.action_horizon
    assert spec.n_action_steps == CONFIG.n_action_steps
    assert policy.card.scene == {"cameras": [], "environment_state": True}
    obs = observation()
    contracts.check_observation(obs, spec)
    policy.reset()
    chunk = policy.infer(obs)
    assert chunk.shape == (CONFIG.model.action_horizon, 6) and chunk.dtype == np.float32
    assert np.isfinite(chunk).all()
    normalized = policy.last_normalized_inputs()
    assert set(normalized) == {STATE_KEY, ENVIRONMENT_STATE_KEY}
    contracts.check_normalized_inputs(normalized)


def test_the_environment_state_changes_the_actions(run: Path) -> None:
    policy = JaxOpenpiPolicy(run)
    outputs = []
    for seed in (1, 2):
        np.random.seed(0)  # the same flow noise for both
        policy.reset()
        outputs.append(policy.infer(observation(seed)))
    assert not np.allclose(outputs[0], outputs[1])


def test_the_contract_checks_refuse_a_scene_without_the_environment_state(run: Path) -> None:
    policy = JaxOpenpiPolicy(run)
    obs = observation()
    del obs[ENVIRONMENT_STATE_KEY]
    with pytest.raises(contracts.ContractViolation, match="environment_state"):
        contracts.check_observation(obs, policy.spec)


def test_a_dataset_without_environment_state_is_refused_in_one_line(tmp_path: Path) -> None:
    plain = write_tiny_dataset(tmp_path / "plain", episodes=1, length=4)
    with pytest.raises(DatasetInputError, match="--environment-state") as caught:
        load_training_arrays(plain, CONFIG, progress=False)
    assert "\n" not in str(caught.value)


def test_norm_stats_without_the_environment_state_are_refused_in_one_line(
    run: Path, dataset: Path, tmp_path: Path, capsys
) -> None:
    stats = json.loads((run / "assets" / "norm_stats.json").read_text())["norm_stats"]
    del stats["environment_state"]
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "norm_stats.json").write_text(json.dumps({"norm_stats": stats}))
    arguments = ["--config", CONFIG.name, "--dataset", str(dataset), "--out", str(tmp_path), "--steps", "1"]
    assert train_lib.main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "environment_state" in error and "compute_norm_stats" in error
    # and a checkpoint whose stats lack it is refused when loaded
    step = tmp_path / "step" / "000004"
    step.mkdir(parents=True)
    (step / "config.json").write_text((run / "checkpoints" / "000004" / "config.json").read_text())
    (step / "assets").mkdir()
    (step / "assets" / "norm_stats.json").write_text(json.dumps({"norm_stats": stats}))
    with pytest.raises(CheckpointError, match="environment_state"):
        JaxOpenpiPolicy(step)


def test_zero_sample_noise_gives_one_chunk_per_observation(run: Path, tmp_path: Path) -> None:
    import shutil

    step = tmp_path / "000004"
    shutil.copytree(run / "checkpoints" / "000004", step)
    config = json.loads((step / "config.json").read_text())
    (step / "config.json").write_text(json.dumps({**config, "sample_noise_scale": 0.0}))
    policy = JaxOpenpiPolicy(step)
    chunks = []
    for seed in (1, 2):
        np.random.seed(seed)  # different episodes: different flow noise streams
        policy.reset()
        chunks.append(policy.infer(observation()))
    np.testing.assert_array_equal(chunks[0], chunks[1])
