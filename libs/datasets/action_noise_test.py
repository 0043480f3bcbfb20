import numpy as np
import pytest

from libs.datasets.action_noise import ActionNoise, ActionNoiseError


def test_noise_is_correlated_has_its_std_and_leaves_the_gripper_alone() -> None:
    process = ActionNoise(std=3.0, correlation_steps=8).process(seed=5, action_space="joint")
    action = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 60.0], dtype=np.float32)
    offsets = np.array([process.perturb(action) - action for _ in range(20_000)])
    assert np.all(offsets[:, 5] == 0)  # the gripper command decides the grasp: never perturbed
    assert np.allclose(offsets[:, :5].std(axis=0), 3.0, rtol=0.1)
    lag1 = np.mean([np.corrcoef(offsets[:-1, j], offsets[1:, j])[0, 1] for j in range(5)])
    assert lag1 == pytest.approx(np.exp(-1 / 8), abs=0.03)


def test_noise_is_a_function_of_the_episode_seed() -> None:
    noise = ActionNoise(std=2.0)
    action = np.zeros(7, dtype=np.float32)
    first = [noise.process(7, "ee").perturb(action) for _ in range(2)]
    assert np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], noise.process(8, "ee").perturb(action))
    assert np.all(first[0][3:] == 0)  # ee: only x, y, z move


def test_bad_settings_name_the_fix() -> None:
    with pytest.raises(ActionNoiseError, match="std"):
        ActionNoise(std=-1.0)
    with pytest.raises(ActionNoiseError, match="correlation"):
        ActionNoise(correlation_steps=0.5)
