"""Each failure is named on a policy that commits it (``FaultyExpert``), with its numbers; the expert's
successful episode is named none."""

from __future__ import annotations

import numpy as np
import pytest

from libs.sim.env import SO101PickPlaceEnv
from libs.sim.episode_signals import EpisodeSignals
from libs.sim.failures import (
    CLOSES_ON_AIR,
    DROPS_IN_TRANSPORT,
    GRASP_SLIPS,
    LATERAL_MISS,
    NEVER_CLOSES,
    NEVER_DESCENDS,
    NEVER_LETS_GO,
    NEVER_REACHES,
    OSCILLATES,
    RELEASES_OUTSIDE,
    STALLS,
    _reversals,
    diagnose_failures,
    direction_words,
    failure_summary,
    grasp_intervals,
)
from libs.sim.faulty_expert import FaultError, FaultyExpert
from libs.sim.scripted_policy import ScriptedPolicy


def play(policy, seed: int, max_steps: int) -> tuple[EpisodeSignals, str]:
    env = SO101PickPlaceEnv(render=False, max_steps=max_steps)
    observation, _ = env.reset(seed=seed)
    policy.reset()
    policy.attach_env(env)
    signals = EpisodeSignals.start(env)
    done = False
    while not done:
        for action in policy.infer(observation)[: policy.spec.n_action_steps]:
            observation, _, terminated, truncated, _ = env.step(action)
            signals.record(env)
            done = terminated or truncated
            if done:
                break
    return signals, str(env.tracker.finish())


def kinds(failures) -> list[str]:
    return [failure.kind for failure in failures]


def test_expert_success_names_no_failure():
    signals, outcome = play(ScriptedPolicy(), seed=0, max_steps=160)
    assert outcome == "success"
    assert diagnose_failures(signals) == []


def test_closing_beside_the_block_is_closes_on_air_with_its_distance_and_side():
    signals, outcome = play(FaultyExpert("beside"), seed=0, max_steps=80)
    failures = diagnose_failures(signals)
    assert outcome == "never_picked_up"
    first = failures[0]
    assert first.kind == CLOSES_ON_AIR
    assert 0.025 < first.value < 0.035  # aimed 3 cm off
    assert "to the robot's left" in first.detail
    assert LATERAL_MISS in kinds(failures)
    assert failure_summary(failures).startswith("closes on air at ")


def test_hovering_above_the_block_never_descends():
    signals, _ = play(FaultyExpert("hover"), seed=0, max_steps=70)
    first = diagnose_failures(signals)[0]
    assert first.kind == NEVER_DESCENDS
    assert 0.04 < first.value < 0.06  # held 5 cm above the block's centre
    assert "hovers 4." in first.detail or "hovers 5." in first.detail


def test_going_down_beside_the_block_is_a_lateral_miss_with_direction():
    signals, _ = play(FaultyExpert("lateral"), seed=0, max_steps=60)
    failures = diagnose_failures(signals)
    assert failures[0].kind == LATERAL_MISS
    assert 0.025 < failures[0].value < 0.035
    assert "to the robot's left" in failures[0].detail
    assert CLOSES_ON_AIR not in kinds(failures)  # the jaws stayed open


def test_a_weak_grip_slips():
    signals, outcome = play(FaultyExpert("slip"), seed=0, max_steps=75)
    first = diagnose_failures(signals)[0]
    assert outcome == "never_picked_up"
    assert first.kind == GRASP_SLIPS
    assert "slid out of the closed jaws" in first.detail


def test_opening_on_the_way_drops_during_transport_and_says_where():
    signals, outcome = play(FaultyExpert("drop"), seed=0, max_steps=100)
    first = diagnose_failures(signals)[0]
    assert outcome == "dropped_during_transport"
    assert first.kind == DROPS_IN_TRANSPORT
    assert first.value > 0.03  # short of the bowl's wall
    assert "above the table" in first.detail and "the gripper opened" in first.detail


def test_placing_beyond_the_bowl_releases_outside_it_by_how_much():
    signals, outcome = play(FaultyExpert("outside"), seed=0, max_steps=150)
    first = diagnose_failures(signals)[0]
    assert outcome == "missed_goal"
    assert first.kind == RELEASES_OUTSIDE
    assert 0.01 < first.value < 0.08
    assert "away from the robot" in first.detail


def test_holding_still_stalls_then_never_reaches_the_block():
    signals, _ = play(FaultyExpert("stall"), seed=0, max_steps=60)
    failures = diagnose_failures(signals)
    assert kinds(failures) == [STALLS, NEVER_REACHES]
    assert failures[0].step == 45  # 1.5 s at 30 Hz
    assert failures[0].unit == "s" and failures[0].value >= 1.5


def test_swinging_back_and_forth_oscillates():
    signals, _ = play(FaultyExpert("oscillate"), seed=0, max_steps=60)
    failures = diagnose_failures(signals)
    assert failures[0].kind == OSCILLATES
    assert "Hz" in failures[0].detail
    assert 0.01 < failures[0].value < 0.06


def test_unknown_fault_names_the_known_ones():
    with pytest.raises(FaultError, match="use one of beside, hover"):
        FaultyExpert("wobble")


def test_direction_words_from_the_robot():
    # Block straight ahead of the robot on +x: +y is the robot's left, +x away from it.
    assert direction_words(np.array([0.0, 0.02]), np.array([0.2, 0.0]), np.zeros(2)).startswith(
        "2.0 cm to the robot's left"
    )
    assert direction_words(np.array([-0.03, 0.0]), np.array([0.2, 0.0]), np.zeros(2)).startswith(
        "3.0 cm towards the robot"
    )


def test_reversals_count_swings_not_jitter():
    steps = np.arange(120)
    square = np.where((steps // 10) % 2 == 0, 0.02, -0.02)
    # 12 plateaus: the first move only sets the direction, each later one is a reversal.
    assert len(_reversals(square, 0.01)) == 10
    jitter = 0.002 * np.sin(steps)
    assert _reversals(jitter, 0.01) == []


def test_a_grasp_lasts_until_neither_jaw_touches():
    grasped = np.array([0, 1, 1, 0, 0, 0, 1, 1], bool)
    touching = np.array([0, 1, 1, 1, 0, 0, 1, 1], bool)
    assert grasp_intervals(grasped, touching) == [(1, 4), (6, None)]


def synthetic(ee: np.ndarray, command: float = 80.0) -> EpisodeSignals:
    """Signals of a gripper frame moving along ``ee`` (jaws open at ``command``), the block never touched."""
    signals = EpisodeSignals(
        bowl_xy=np.array([0.16, 0.09]), bowl_inner_radius_m=0.055, block_half_size_m=0.0125
    )
    for point in ee:
        signals.ee.append(np.asarray(point, dtype=np.float64))
        signals.block.append(np.array([0.2, 0.0, 0.0125]))
        signals.opening.append(command)
        signals.command.append(command)
        signals.fixed_jaw.append(False)
        signals.moving_jaw.append(False)
        signals.in_bowl.append(False)
    return signals


def jitter(steps: int, x: float = 0.2) -> np.ndarray:
    return np.array([[x, 0.01 if (t // 2) % 2 else -0.01, 0.12] for t in range(steps)])


def test_an_early_jitter_the_policy_recovered_from_is_not_the_cause():
    descent = np.linspace([0.2, 0.0, 0.12], [0.2, 0.005, 0.0125], 40)
    hold = np.tile([0.2, 0.005, 0.0125], (60, 1))
    failures = diagnose_failures(synthetic(np.vstack([jitter(20), descent, hold])))
    assert kinds(failures) == [NEVER_CLOSES, STALLS]
    assert "lowest gripper command after that is 80" in failures[0].detail


def test_jitter_that_never_ends_oscillates():
    failures = diagnose_failures(synthetic(jitter(90, x=0.3)))  # 10 cm from the block
    assert failures[0].kind == OSCILLATES
    assert "along y" in failures[0].detail and "7.5 Hz" in failures[0].detail


def test_a_block_still_held_at_the_end_never_lets_go():
    carry = np.vstack(
        [np.tile([0.2, 0.0, 0.0125], (10, 1)), np.linspace([0.2, 0.0, 0.0125], [0.2, 0.05, 0.1], 30)]
    )
    signals = synthetic(carry, command=0.0)
    signals.block = [point.copy() for point in carry]  # carried in the jaws
    signals.opening = [15.0] * len(carry)
    signals.fixed_jaw = signals.moving_jaw = [step >= 5 for step in range(len(carry))]
    failures = diagnose_failures(signals)
    assert kinds(failures) == [NEVER_LETS_GO]
    assert failures[0].detail.startswith(
        "grasped at step 5 and still held when the episode ended, 8.8 cm above"
    )
