"""The input-drift comparison on synthetic statistics: silent on a fresh sample of the training distribution,
each mismatch named by its cause."""

from __future__ import annotations

import numpy as np
import pytest

from libs.evaluation.plan.drift_fixtures import MISMATCHED_FPS, MISMATCHES, SWAPPED_JOINTS
from libs.evaluation.plan.input_drift import (
    ObservedInputs,
    best_permutation,
    drift_error,
    find_drift,
)

JOINT_MEANS = np.array([0.0, -30.0, 40.0, 65.0, -4.0, 40.0])
JOINT_STDS = np.array([20.0, 15.0, 15.0, 12.0, 25.0, 35.0])
CAMERAS = {"observation.images.overhead": (0.77, 0.66, 0.49), "observation.images.wrist": (0.64, 0.54, 0.45)}


def _joints(rng: np.random.Generator, frames: int) -> np.ndarray:
    values = JOINT_MEANS + JOINT_STDS * rng.standard_normal((frames, 6))
    values[:, 5] = np.clip(values[:, 5], 0.0, 100.0)
    return values


def _vector_stats(values: np.ndarray) -> dict[str, list]:
    levels = (0.01, 0.1, 0.5, 0.9, 0.99)
    quantiles = {f"q{round(q * 100):02d}": np.quantile(values, q, axis=0).tolist() for q in levels}
    return {
        "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(),
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
        **quantiles,
    }


def _image_stats(mean: tuple[float, float, float]) -> dict[str, list]:
    channel = np.asarray(mean).reshape(3, 1, 1)
    full = np.ones((3, 1, 1))
    return {
        "mean": channel.tolist(),
        "std": (0.15 * full).tolist(),
        "min": (0 * full).tolist(),
        "max": full.tolist(),
    }


def _training_stats() -> dict[str, dict]:
    rng = np.random.default_rng(0)
    joints = _joints(rng, 5000)
    stats = {"observation.state": _vector_stats(joints), "action": _vector_stats(joints + 1.0)}
    for key, mean in CAMERAS.items():
        stats[key] = _image_stats(mean)
    return stats


def _observed(seed: int = 1, frames: int = 300) -> ObservedInputs:
    rng = np.random.default_rng(seed)
    joints = _joints(rng, frames)
    images = {key: np.asarray(mean) + 0.01 * rng.standard_normal((40, 3)) for key, mean in CAMERAS.items()}
    predicted = JOINT_MEANS + 0.5 * JOINT_STDS * rng.standard_normal((100, 6))
    return ObservedInputs({"observation.state": joints, "action": joints + 1.0}, images, predicted, 30.0)


@pytest.mark.parametrize("seed", range(5))
def test_a_fresh_sample_of_the_training_distribution_is_not_drift(seed: int) -> None:
    assert find_drift(_training_stats(), _observed(seed, frames=60), training_fps=30.0) == []


@pytest.mark.parametrize("mismatch", sorted(MISMATCHES))
def test_each_mismatch_is_named_by_its_cause(mismatch: str) -> None:
    edit, cause = MISMATCHES[mismatch]
    stats = _training_stats()
    stats = edit(stats) if edit is not None else stats
    fps = MISMATCHED_FPS if edit is None else 30.0
    drifts = find_drift(stats, _observed(), training_fps=fps)
    assert drifts and drifts[0].cause == cause, [drift.line for drift in drifts]
    if mismatch == "permuted_joints":
        assert str(SWAPPED_JOINTS) in drifts[0].line


def test_radians_vs_degrees_names_the_factor() -> None:
    stats = _training_stats()
    observed = _observed()
    observed.vectors = {key: np.deg2rad(values) for key, values in observed.vectors.items()}
    drifts = find_drift(stats, observed)
    assert drifts[0].cause == "units or scale" and "degrees in training" in drifts[0].line


def test_image_stats_on_the_0_255_scale_are_a_scale_drift() -> None:
    stats = _training_stats()
    key = "observation.images.overhead"
    stats[key] = {name: (np.asarray(value) * 255).tolist() for name, value in stats[key].items()}
    drifts = find_drift(stats, _observed())
    assert [(d.feature, d.cause) for d in drifts] == [(key, "units or scale")]


def test_predicted_actions_far_outside_training_are_named() -> None:
    observed = _observed()
    observed.predicted_actions = observed.predicted_actions * 10.0
    drifts = find_drift(_training_stats(), observed)
    assert [d.cause for d in drifts] == ["actions out of range"]


def test_best_permutation_finds_the_cheapest_assignment() -> None:
    costs = np.array([[5.0, 0.1, 9.0], [0.2, 5.0, 9.0], [9.0, 9.0, 0.0]])
    assert best_permutation(costs)[0] == (1, 0, 2)


def test_the_refusal_is_one_line_naming_the_cause_and_the_fix() -> None:
    stats = MISMATCHES["permuted_joints"][0](_training_stats())
    drifts = find_drift(stats, _observed())
    message = str(drift_error(drifts, "runs/act/000100", "--allow-input-drift"))
    assert "\n" not in message and "joint order differs from training" in message
    assert "--allow-input-drift evaluates anyway" in message


def test_actions_never_denormalised_are_refused_with_the_fix_on_the_policy_side() -> None:
    stats = (
        _training_stats()
    )  # every joint trained between 40 and 90 (the wrist flex's 33.5..92.3 on the bench)
    stats["action"] = {"mean": [65.0] * 6, "std": [10.0] * 6, "min": [40.0] * 6, "max": [90.0] * 6}
    observed = _observed()
    del observed.vectors["action"]  # the env's own (expert) actions are not in question here
    observed.predicted_actions = 0.8 * np.random.default_rng(2).standard_normal((100, 6))  # normalised units
    drifts = find_drift(stats, observed)
    assert drifts[0].cause == "actions out of range", drifts
    message = str(drift_error(drifts, "runs/smolvla/010000", "--allow-input-drift"))
    assert "de-normalise the policy's actions" in message and "fix the env's inputs" not in message


def test_one_joint_in_other_units_is_named_with_its_factor() -> None:
    stats = _training_stats()
    observed = _observed()
    for key in ("observation.state", "action"):
        observed.vectors[key] = observed.vectors[key].copy()
        observed.vectors[key][:, 5] = np.rad2deg(observed.vectors[key][:, 5])  # gripper: degrees twice
    drifts = find_drift(stats, observed)
    assert drifts[0].cause == "units or scale", drifts
    assert "dimension 5 divided by 0.01745" in drifts[0].line and "degrees observed" in drifts[0].line


def test_a_gripper_on_0_100_fed_to_a_policy_trained_on_0_1_is_named_as_such() -> None:
    stats = _training_stats()
    for key in ("observation.state", "action"):  # trained on openpi's 0–1 gripper
        for name, values in stats[key].items():
            stats[key][name] = [*values[:5], values[5] / 100.0]
    drifts = find_drift(stats, _observed())
    assert drifts[0].cause == "units or scale", drifts
    # ÷57.3 (degrees vs radians) fits within the limit too; the best fit is named.
    assert "dimension 5 divided by 0.01 (0–100 observed vs 0–1 in training)" in drifts[0].line


def test_environment_state_with_exchanged_dimensions_is_drift() -> None:
    rng = np.random.default_rng(3)
    block_and_bowl = np.column_stack(
        [0.22 + 0.03 * rng.standard_normal(4000), 0.0 + 0.08 * rng.standard_normal(4000), np.full(4000, 0.02)]
    )
    stats = {**_training_stats(), "observation.environment_state": _vector_stats(block_and_bowl)}
    fresh = block_and_bowl[rng.choice(4000, 200)]
    observed = _observed()
    observed.vectors["observation.environment_state"] = fresh
    assert find_drift(stats, observed) == []
    observed.vectors["observation.environment_state"] = fresh[:, [1, 0, 2]]
    drifts = find_drift(stats, observed)
    assert drifts and drifts[0].feature == "observation.environment_state", drifts
    assert drifts[0].line.startswith("environment state")
