"""Each outcome, first from hand-written simulator facts, then from crafted action sequences in the env."""

from dataclasses import replace

import numpy as np
import pytest

from libs.sim.env import HOME_JOINTS, SO101PickPlaceEnv
from libs.sim.expert import ExpertPlan
from libs.sim.outcome import (
    PICK_HEIGHT_M,
    PROGRESS_STAGES,
    SUCCESS_HOLD_STEPS,
    Outcome,
    OutcomeTracker,
    TaskState,
)
from libs.sim.scripted_policy import ScriptedPolicy
from scenes.so101.scene import bowl_floor_top_z

_RESTING = TaskState(
    block_position=np.array([0.2, 0.0, 0.0125]),
    block_speed_m_s=0.0,
    block_height_m=0.0,
    touching_fixed_jaw=False,
    touching_moving_jaw=False,
    in_bowl=False,
    bowl_distance_m=0.2,
    gripper_command=100.0,
)
_HELD = replace(
    _RESTING, block_height_m=0.08, touching_fixed_jaw=True, touching_moving_jaw=True, gripper_command=0
)


def _run(states):
    tracker = OutcomeTracker()
    decided = [tracker.update(state) for state in states]
    return tracker, decided


def test_tracker_success_needs_a_resting_block_in_the_bowl_for_the_hold_time():
    in_bowl = replace(_RESTING, in_bowl=True, block_height_m=0.004, bowl_distance_m=0.01)
    tracker, decided = _run([_HELD, *[in_bowl] * SUCCESS_HOLD_STEPS])
    assert decided[-2] is None and decided[-1] == Outcome.SUCCESS
    figures = tracker.figures()
    assert figures.picked and figures.pick_step == 1 and figures.max_block_height_m == pytest.approx(0.08)


def test_tracker_failures_are_told_apart():
    tracker, _ = _run([_RESTING] * 3)
    assert tracker.finish() == Outcome.NEVER_PICKED_UP
    tracker, _ = _run([_HELD, _HELD])
    assert tracker.finish() == Outcome.TIMEOUT
    # Slipping out past one jaw, far from the bowl: a drop on the way.
    slipping = replace(_HELD, touching_moving_jaw=False, block_height_m=0.05)
    tracker, _ = _run([_HELD, slipping, _RESTING])
    assert tracker.finish() == Outcome.DROPPED_DURING_TRANSPORT
    # Let go next to the bowl, landing outside it: a missed placement.
    beside_bowl = replace(_RESTING, bowl_distance_m=0.08)
    tracker, _ = _run([_HELD, beside_bowl, replace(beside_bowl, bowl_distance_m=0.12)])
    assert tracker.finish() == Outcome.MISSED_GOAL
    # Falling off the table is decided at once.
    tracker, decided = _run([_HELD, replace(_RESTING, block_height_m=-0.3, gripper_command=5)])
    assert decided[-1] == Outcome.DROPPED_DURING_TRANSPORT
    # A block pushed around on the table is not "picked".
    tracker, _ = _run([replace(_RESTING, block_height_m=PICK_HEIGHT_M / 2, touching_fixed_jaw=True)])
    assert not tracker.picked


# ---- crafted action sequences in the simulator --------------------------------------------------------
SEED = 0


@pytest.fixture(scope="module")
def env():
    environment = SO101PickPlaceEnv(render=False, max_steps=200)
    yield environment
    environment.close()


def _expert_until(env, policy, stop, then):
    """Expert actions until ``stop(info)``, then ``then(last_action, k)`` for the rest of the episode."""
    observation, _ = env.reset(seed=SEED)
    policy.reset()
    policy.attach_env(env)
    takeover, action, k = False, None, 0
    while True:
        if takeover:
            action = then(action, k)
            k += 1
        else:
            action = policy.infer(observation)[0]
        observation, _, terminated, truncated, info = env.step(action)
        takeover = takeover or stop(info)
        if terminated or truncated:
            return info, env.episode_figures()


def _lifted(env):
    return lambda info: info["picked"] and env.block_position[2] > 0.06


def test_expert_sequence_succeeds(env):
    info, figures = _expert_until(env, ScriptedPolicy(), lambda info: False, None)
    assert info["outcome"] == "success" and figures.outcome == Outcome.SUCCESS
    assert figures.picked and figures.pick_step is not None and figures.max_block_height_m > 0.05
    assert figures.progress == 1.0


def test_holding_still_is_never_picked_up(env):
    env.reset(seed=SEED)
    for _ in range(30):
        env.step(HOME_JOINTS)
    assert env.episode_figures().picked is False
    assert env.tracker.finish() == Outcome.NEVER_PICKED_UP
    assert env.episode_figures().progress == 0.0


def test_holding_the_block_until_time_runs_out_is_a_timeout(env):
    info, figures = _expert_until(env, ScriptedPolicy(), _lifted(env), lambda action, k: action)
    assert info["outcome"] == "timeout" and figures.picked


def test_loosening_the_grip_mid_air_is_a_drop(env):
    def loosen(action, k):
        loosened = action.copy()
        loosened[5] = 20.0  # opened a little right after the lift, far from the bowl
        return loosened

    info, figures = _expert_until(env, ScriptedPolicy(), _lifted(env), loosen)
    assert info["outcome"] == "dropped_during_transport" and figures.picked
    assert PROGRESS_STAGES[figures.progress_stage] == "lifted"  # lost before it was over the bowl


def test_releasing_away_from_the_bowl_is_a_missed_goal(env):
    policy = ScriptedPolicy()
    observation, _ = env.reset(seed=SEED)
    policy.reset()
    policy.attach_env(env)
    # Re-plan as if the bowl were 8.5 cm to the side: the block lands beside the bowl, clear of its wall.
    bowl = env.bowl_position
    wrong_bowl = bowl + np.array([0.0, 0.085 if bowl[1] < 0 else -0.085, 0.0])
    policy._plan = ExpertPlan(
        env.ee_position, env.block_position, env.block_yaw, wrong_bowl, bowl_floor_top_z(), 0.025, True
    )
    done = False
    while not done:
        observation, _, terminated, truncated, info = env.step(policy.infer(observation)[0])
        done = terminated or truncated
    assert info["outcome"] == "missed_goal" and env.episode_figures().picked


def test_progress_orders_episodes_that_all_fail():
    def stage(states):
        tracker, _ = _run(states)
        tracker.finish()
        return PROGRESS_STAGES[tracker.figures().progress_stage]

    touched = replace(_RESTING, touching_fixed_jaw=True)
    grasped = replace(_RESTING, touching_fixed_jaw=True, touching_moving_jaw=True)
    over_bowl = replace(_HELD, bowl_distance_m=0.01)
    assert stage([_RESTING] * 3) == "none"
    assert stage([_RESTING, touched, _RESTING]) == "approached"
    assert stage([touched, grasped, _RESTING]) == "grasped"
    assert stage([grasped, _HELD, _RESTING]) == "lifted"
    assert stage([_HELD, over_bowl, _RESTING]) == "over_bowl"
    in_bowl = replace(_RESTING, in_bowl=True, block_height_m=0.004, bowl_distance_m=0.01)
    tracker, _ = _run([_HELD, over_bowl, *[in_bowl] * SUCCESS_HOLD_STEPS])
    assert tracker.figures().progress == 1.0
    # Reached milestones are kept when the block is lost afterwards.
    assert stage([_HELD, over_bowl, replace(_RESTING, block_height_m=-0.3)]) == "over_bowl"


def test_the_report_names_the_same_progress_stages():
    from libs.evaluation.stats.metrics import PROGRESS_STAGES as REPORTED_STAGES

    assert REPORTED_STAGES == PROGRESS_STAGES
