from __future__ import annotations

import numpy as np
import pytest

from libs.evaluation.play.evaluated_episode import evaluate_episode
from libs.evaluation.play.whiskers import record_whisker_episode
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.play.observers import EpisodeObserver, StepEvent
from libs.sim.scene_config import SceneConfig
from libs.sim.scripted_policy import ScriptedPolicy
from libs.viz.diagnostics import GRIPPER_CLOSE_THRESHOLD
from libs.viz.whiskers import (
    MODE_LABELS,
    WhiskerEpisode,
    WhiskerError,
    WhiskerRecorder,
    WhiskerSimulator,
)

#: Long enough for the expert to descend and close on the block (it closes at about step 45).
STEPS_TO_GRASP = 70


def make_env(action_space: str = "joint", max_steps: int = STEPS_TO_GRASP) -> SO101PickPlaceEnv:
    return SO101PickPlaceEnv(
        scene=SceneConfig().with_cameras([]), action_space=action_space, max_steps=max_steps, render=False
    )


def live_trajectory(env: SO101PickPlaceEnv, seed: int, mode: str | None) -> tuple[np.ndarray, str]:
    """Full physics state after every step of a scripted episode, with or without whiskers."""
    states = []
    recorder = WhiskerRecorder(mode) if mode else None

    class KeepStates(EpisodeObserver):
        def on_step(self, event: StepEvent) -> None:
            data = env.data
            states.append(np.concatenate([[data.time], data.qpos, data.qvel, data.act, data.ctrl, data.qacc]))

    observers = [KeepStates(), *([recorder] if recorder is not None else [])]
    policy = ScriptedPolicy(action_space=env.action_space_name)
    result = evaluate_episode(policy, env, seed, observers=observers)
    if recorder is not None:
        episode = recorder.finish(result.record.outcome, 5)
        assert len(episode.forecasts) == result.record.inferences
    return np.asarray(states), result.record.outcome


@pytest.mark.parametrize(
    ("action_space", "mode"), [("joint", "dynamic"), ("ee", "dynamic"), ("ee", "kinematic")]
)
def test_forward_simulation_never_changes_the_live_episode(action_space: str, mode: str) -> None:
    env = make_env(action_space, max_steps=40)
    without, outcome_without = live_trajectory(env, seed=4, mode=None)
    with_whiskers, outcome_with = live_trajectory(env, seed=4, mode=mode)
    assert outcome_with == outcome_without
    assert without.shape == with_whiskers.shape
    # Bit-identical: not close, equal (the scratch MjData is the only thing the whiskers step).
    assert np.array_equal(without, with_whiskers)


def test_scripted_expert_whiskers_end_at_the_block() -> None:
    env = make_env()
    _, episode = record_whisker_episode(ScriptedPolicy(), env, seed=2)
    block = episode.block_start
    # The first chunk that commands the gripper shut: where it predicts the gripper frame then is the grasp.
    closing = [f for f in episode.forecasts if np.any(f.gripper_command < GRIPPER_CLOSE_THRESHOLD)]
    assert closing, "the expert never commanded a close within the test's steps"
    forecast = closing[0]
    row = int(np.flatnonzero(forecast.gripper_command < GRIPPER_CLOSE_THRESHOLD)[0])
    assert np.linalg.norm(forecast.ee_path[row] - forecast.block_start) < 0.015
    # And the descent before it: the chunk predicted right before the close ends at the block too.
    before = episode.forecasts[episode.forecasts.index(forecast) - 1]
    assert np.linalg.norm(before.ee_path[-1] - block) < 0.015
    # Early chunks (still travelling) end far from it: the whiskers are not trivially at the block.
    assert np.linalg.norm(episode.forecasts[0].ee_path[-1] - block) > 0.03


def test_dynamic_forecast_retraces_the_executed_steps_and_kinematic_is_labelled() -> None:
    env = make_env(max_steps=30)
    _, dynamic = record_whisker_episode(ScriptedPolicy(), env, seed=1, mode="dynamic")
    actual = np.asarray(dynamic.actual_ee)
    for forecast in dynamic.forecasts:
        executed = slice(forecast.env_step + 1, forecast.env_step + 1 + dynamic.n_action_steps)
        steps = len(actual[executed])
        # Same state, same actions, same physics: the first n_action_steps are the path actually taken.
        assert np.array_equal(forecast.ee_path[:steps], actual[executed])

    _, kinematic = record_whisker_episode(ScriptedPolicy(), env, seed=1, mode="kinematic")
    assert "no contacts" in kinematic.mode_label and kinematic.mode_label == MODE_LABELS["kinematic"]
    for forecast in kinematic.forecasts:
        # No dynamics: the block stays exactly where it was at inference.
        assert np.array_equal(forecast.block_path, np.tile(forecast.block_start, (forecast.length, 1)))
    # Joints placed at their targets: kinematic paths lead dynamic ones (no servo lag) but follow them.
    lead = [
        np.linalg.norm(k.ee_path[-1] - d.ee_path[-1])
        for k, d in zip(kinematic.forecasts, dynamic.forecasts, strict=True)
    ]
    assert max(lead) < 0.05


def test_whisker_episode_round_trips_through_npz(tmp_path) -> None:
    env = make_env(max_steps=15)
    _, episode = record_whisker_episode(ScriptedPolicy(), env, seed=0, policy_name="scripted")
    loaded = WhiskerEpisode.load(episode.save(tmp_path / "w.npz"))
    assert (loaded.mode, loaded.seed, loaded.policy, loaded.outcome) == (
        episode.mode,
        episode.seed,
        "scripted",
        episode.outcome,
    )
    assert loaded.n_action_steps == 5 and loaded.chunk_length == 10
    assert len(loaded.forecasts) == len(episode.forecasts)
    for a, b in zip(loaded.forecasts, episode.forecasts, strict=True):
        assert a.env_step == b.env_step
        assert np.array_equal(a.ee_path, b.ee_path) and np.array_equal(a.actions, b.actions)
    assert np.array_equal(np.asarray(loaded.actual_qpos), np.asarray(episode.actual_qpos))
    assert loaded.forecast_at(0) == 0 and loaded.forecast_at(7) == 1


def test_bad_inputs_name_the_fix(tmp_path) -> None:
    env = make_env(max_steps=5)
    with pytest.raises(WhiskerError, match="dynamic, kinematic"):
        WhiskerSimulator(env, "magic")
    env.reset(seed=0)
    with pytest.raises(WhiskerError, match=r"\(T, action_dim\)"):
        WhiskerSimulator(env).forecast(np.zeros(6), env_step=0)
    (tmp_path / "broken.npz").write_text("not a zip")
    with pytest.raises(WhiskerError, match="record again"):
        WhiskerEpisode.load(tmp_path / "broken.npz")
