"""The input-drift check's report section and the inputs read from a card alone (no policy loaded)."""

from __future__ import annotations

from libs.evaluation.plan.input_drift import Drift
from libs.evaluation.play.input_check import (
    ALLOW_FLAG,
    MIN_EPISODES_FOR_ENVIRONMENT_STATE,
    InputCheck,
    card_spec,
    compared_stats,
    drift_section,
    reference_starts,
)
from libs.policy_api.card import CheckpointCard, ObservationFeature

DARKER = Drift("observation.images.overhead", "scene or lighting", "overhead looks like another lighting")
PERMUTED = Drift("observation.state", "permuted order", "state joint order differs from training")


def test_nothing_to_say_without_the_flag_or_an_arm() -> None:
    assert drift_section([], allowed=False) is None


def test_allowed_drift_comes_first_then_the_arms_expected_drift() -> None:
    checks = [
        InputCheck("000100", (PERMUTED,)),
        InputCheck("000100", (DARKER,), "perturbation arm dim", arm="dim"),
    ]
    section = drift_section(checks, allowed=True)
    assert section is not None
    markdown, data = section
    assert markdown.index(ALLOW_FLAG) < markdown.index(PERMUTED.line) < markdown.index("Expected input drift")
    assert f"- `000100 under dim` (perturbation arm dim): {DARKER.line}" in markdown
    assert data["allowed"] and data["checks"][1]["drifts"][0]["cause"] == "scene or lighting"


def test_allowed_without_drift_says_none_was_found() -> None:
    markdown, _ = drift_section([InputCheck("000100", ())], allowed=True) or ("", {})
    assert "no input drift was found" in markdown


def test_a_card_names_its_colour_cameras_and_action_space() -> None:
    card = CheckpointCard(
        observation_features=(
            ObservationFeature("observation.state", (6,)),
            ObservationFeature("observation.images.overhead", (48, 64, 3)),
            ObservationFeature("observation.images.wrist_depth", (48, 64)),
        ),
        action_space="ee",
        block_positions=[[0.2, 0.01]],
    )
    spec = card_spec(card)
    assert [camera.name for camera in spec.cameras] == ["overhead"] and spec.action_space == "ee"
    starts = reference_starts(card)
    assert starts[0].block_xy == (0.2, 0.01) and all(start.block_xy is None for start in starts[1:])


def test_the_environment_state_is_compared_only_once_training_covered_the_layouts() -> None:
    stats = {"observation.state": {"mean": [0.0]}, "observation.environment_state": {"mean": [0.2]}}
    few = CheckpointCard(stats=stats, block_positions=[[0.2, 0.0]] * 2)
    many = CheckpointCard(stats=stats, block_positions=[[0.2, 0.0]] * MIN_EPISODES_FOR_ENVIRONMENT_STATE)
    assert set(compared_stats(few)) == {"observation.state"}
    assert set(compared_stats(many)) == set(stats)
