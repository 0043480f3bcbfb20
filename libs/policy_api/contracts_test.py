from __future__ import annotations

import numpy as np
import pytest

from libs.policy_api.contracts import (
    ContractViolation,
    check_action_chunk,
    check_normalized_inputs,
    check_observation,
    chunk_looks_normalized,
)
from libs.policy_api.types import CameraInput, PolicySpec

JOINT_STATS = {
    "mean": [2.0, -20.0, 35.0, 70.0, 1.0, 45.0],
    "std": [15.0, 18.0, 20.0, 8.0, 5.0, 40.0],
    "min": [-40.0, -70.0, 10.0, 55.0, -10.0, 0.0],
    "max": [40.0, 10.0, 90.0, 95.0, 10.0, 100.0],
}


def test_normalised_chunk_is_recognised_against_joint_stats() -> None:
    normalised = np.full((4, 6), 0.3, dtype=np.float32)
    raw = np.tile(np.asarray(JOINT_STATS["mean"], dtype=np.float32), (4, 1))
    assert chunk_looks_normalized(normalised, JOINT_STATS)
    assert not chunk_looks_normalized(raw, JOINT_STATS)
    assert not chunk_looks_normalized(normalised, None)  # no stats: nothing to compare with


def test_ee_actions_near_zero_are_not_mistaken_for_normalised() -> None:
    ee_stats = {
        "mean": [0.2, 0.0, 0.08, 0.3, 0.0, -0.9, 50.0],
        "std": [0.03, 0.06, 0.04, 0.1, 0.1, 0.05, 45.0],
        "min": [0.12, -0.14, 0.0, 0.1, -0.3, -1.0, 0.0],
        "max": [0.28, 0.14, 0.2, 0.5, 0.3, -0.8, 100.0],
    }
    ee_chunk = np.tile(np.array([0.2, 0.0, 0.05, 0.3, 0.0, -0.95, 0.0], dtype=np.float32), (3, 1))
    assert not chunk_looks_normalized(ee_chunk, ee_stats)


def test_ee_tails_are_refused_only_when_another_layout_or_unit() -> None:
    spec = PolicySpec(cameras=(), action_dim=7, action_space="ee", chunk_length=2, n_action_steps=1)
    position = np.array([0.2, 0.0, 0.08])

    def chunk(tail_distance: float) -> np.ndarray:
        tail = position + np.array([0.0, 0.0, tail_distance])
        return np.tile(np.concatenate([position, tail, [50.0]]), (2, 1)).astype(np.float32)

    for undertrained in (0.07, 0.1, 0.19):  # an undertrained policy's tails: behaviour, not a setup error
        check_action_chunk(chunk(undertrained), spec)
    for wrong in (
        1.0,
        100.0,
        0.001,
    ):  # a unit approach vector, millimetres, the tail collapsed on the position
        with pytest.raises(ContractViolation, match="ee action tail points lie"):
            check_action_chunk(chunk(wrong), spec)


def test_normalised_inputs_bound() -> None:
    check_normalized_inputs({"observation.state": np.ones(6), "task": np.array(["x"])})
    with pytest.raises(ContractViolation, match="reaches ±300"):
        check_normalized_inputs({"observation.images.wrist": np.full((3, 4, 4), -300.0)})
    gripper_in_other_units = np.array([[0.1, -0.3, 0.2, 0.5, -1.0, 329.0]])  # 0–100 fed, 0–1 trained
    with pytest.raises(ContractViolation, match="reaches ±329 at dimension 5 .* other units than training's"):
        check_normalized_inputs({"observation.state": gripper_in_other_units})


def test_depth_key_present_but_declared_rgb() -> None:
    spec = PolicySpec(cameras=(CameraInput("overhead_depth", 4, 4),))
    observation = {
        "observation.state": np.zeros(6, np.float32),
        "observation.images.overhead": np.zeros((4, 4, 3), np.uint8),
        "observation.images.overhead_depth": np.zeros((4, 4), np.float32),
    }
    with pytest.raises(ContractViolation, match="CameraInput"):
        check_observation(observation, spec)
    rgb_spec = PolicySpec(cameras=(CameraInput("overhead", 4, 4),))
    check_observation(observation, rgb_spec)
    swapped = {**observation, "observation.images.overhead": np.zeros((4, 4), np.float32)}
    with pytest.raises(ContractViolation, match="depth was fed as RGB"):
        check_observation(swapped, rgb_spec)


def test_environment_state_policy_refused_in_a_scene_without_it() -> None:
    spec = PolicySpec(cameras=(), environment_state_dim=9)
    state = np.zeros(6, dtype=np.float32)
    with pytest.raises(ContractViolation, match="trained with observation.environment_state"):
        check_observation({"observation.state": state}, spec)
    with pytest.raises(ContractViolation, match=r"shape \(7,\)"):
        check_observation({"observation.state": state, "observation.environment_state": np.zeros(7)}, spec)
    check_observation({"observation.state": state, "observation.environment_state": np.zeros(9)}, spec)


def test_scene_check_refuses_environment_state_either_way() -> None:
    from libs.policy_api.contracts import check_scene_matches
    from libs.sim.scene_config import SceneConfig

    image_scene, state_scene = SceneConfig(), SceneConfig().state_based()
    cases = ((image_scene, state_scene, "does not emit"), (state_scene, image_scene, "emits"))
    for evaluated, trained, word in cases:
        pattern = f"trained with(out)? observation.environment_state .* {word}"
        with pytest.raises(ContractViolation, match=pattern):
            check_scene_matches(evaluated, trained.to_dict(), SceneConfig.from_dict, [])
    check_scene_matches(state_scene, state_scene.to_dict(), SceneConfig.from_dict, [])
