from __future__ import annotations

import numpy as np
import pytest

from libs.evaluation.play.whiskers import record_whisker_episode
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.scene_config import SceneConfig
from libs.sim.scripted_policy import ScriptedPolicy
from libs.viz.diagnostics import (
    CHECK_NAMES,
    CHUNKS_DISAGREE,
    DOES_NOT_MOVE,
    MEAN_REGRESSION,
    NEVER_APPROACHES,
    OUT_OF_RANGE,
    diagnose,
    findings_lines,
    likely_causes,
    summarize_findings,
)
from libs.viz.fixtures import ConstantPolicy, MeanGripperPolicy, action_stats_of
from libs.viz.whiskers import ChunkForecast, WhiskerEpisode


@pytest.fixture(scope="module")
def env() -> SO101PickPlaceEnv:
    return SO101PickPlaceEnv(scene=SceneConfig().with_cameras([]), max_steps=90, render=False)


@pytest.fixture(scope="module")
def demonstrations() -> list[WhiskerEpisode]:
    """Two full scripted episodes (seeds 5 and 6): the 'training data' and the expert's own whiskers."""
    full = SO101PickPlaceEnv(scene=SceneConfig().with_cameras([]), render=False)
    return [record_whisker_episode(ScriptedPolicy(), full, seed)[1] for seed in (5, 6)]


@pytest.fixture(scope="module")
def expert(demonstrations) -> WhiskerEpisode:
    return demonstrations[0]


@pytest.fixture(scope="module")
def dataset_stats(demonstrations) -> dict[str, np.ndarray]:
    """Action stats of the demonstrations, as a dataset recorded from them would store."""
    return action_stats_of(np.concatenate([episode.executed_actions for episode in demonstrations]))


def by_name(findings):
    return {finding.name: finding for finding in findings}


def test_scripted_expert_shows_no_cause(expert, dataset_stats) -> None:
    # An episode of the training data itself: nothing may be flagged.
    findings = diagnose(expert, dataset_stats)
    assert [f.name for f in findings] == list(CHECK_NAMES)
    assert likely_causes(findings) == [], findings_lines(findings)
    assert all(f.flagged is False for f in findings)


def test_constant_chunk_is_reported_as_does_not_move(env, dataset_stats) -> None:
    _, episode = record_whisker_episode(ConstantPolicy(), env, seed=5)
    findings = by_name(diagnose(episode, dataset_stats))
    assert findings[DOES_NOT_MOVE].flagged is True
    assert findings[DOES_NOT_MOVE].value < 0.002
    # Holding the home pose also never gets near the block.
    assert findings[NEVER_APPROACHES].flagged is True
    assert DOES_NOT_MOVE in findings_lines(list(findings.values()))[0]


def test_gripper_at_the_dataset_mean_is_reported_as_mean_regression(env, dataset_stats) -> None:
    mean_gripper = float(dataset_stats["mean"][-1])
    _, episode = record_whisker_episode(MeanGripperPolicy(mean_gripper), env, seed=5)
    findings = by_name(diagnose(episode, dataset_stats))
    assert findings[MEAN_REGRESSION].flagged is True, findings[MEAN_REGRESSION].detail
    assert "never closes" in findings[MEAN_REGRESSION].detail
    # The arm still goes for the block: the diagnosis singles out the gripper.
    assert findings[DOES_NOT_MOVE].flagged is False
    assert findings[NEVER_APPROACHES].flagged is False
    # Without the dataset's stats the check says what it is missing instead of guessing.
    unmeasured = by_name(diagnose(episode, None))[MEAN_REGRESSION]
    assert unmeasured.flagged is None and "never crosses" in unmeasured.detail


def synthetic_episode(
    chunks: list[np.ndarray], starts: list[int], block=(0.2, 0.0, 0.0125)
) -> WhiskerEpisode:
    """Forecasts whose predicted gripper frame follows the action's first three entries (an ee layout)."""
    forecasts = []
    for start, chunk in zip(starts, chunks, strict=True):
        chunk = np.asarray(chunk, dtype=np.float32)
        forecasts.append(
            ChunkForecast(
                env_step=start,
                actions=chunk,
                ee_start=chunk[0, :3].astype(np.float64),
                ee_path=chunk[:, :3].astype(np.float64),
                gripper_command=chunk[:, -1].astype(np.float64),
                gripper_opening=chunk[:, -1].astype(np.float64),
                block_start=np.asarray(block, dtype=np.float64),
                block_path=np.tile(block, (len(chunk), 1)),
            )
        )
    return WhiskerEpisode(
        mode="dynamic",
        seed=0,
        action_space="ee",
        chunk_length=len(chunks[0]),
        n_action_steps=starts[1] - starts[0] if len(starts) > 1 else len(chunks[0]),
        bowl_position=np.zeros(3),
        forecasts=forecasts,
        actual_ee=[np.array([0.2, 0.0, 0.15])],
        actual_block=[np.asarray(block)],
    )


def line_chunk(start: np.ndarray, end: np.ndarray, steps: int = 10, gripper: float = 50.0) -> np.ndarray:
    points = np.linspace(start, end, steps)
    approach = np.tile([0.0, 0.0, -1.0], (steps, 1))
    return np.hstack([points, approach, np.full((steps, 1), gripper)])


def test_chunks_that_change_their_mind_are_reported() -> None:
    start = np.array([0.2, 0.0, 0.15])
    # Consecutive chunks heading 8 cm to the left, then 8 cm to the right, alternately.
    chunks = [line_chunk(start, start + np.array([0.0, 0.08 * (-1) ** i, 0.0])) for i in range(6)]
    episode = synthetic_episode(chunks, starts=[5 * i for i in range(6)])
    assert by_name(diagnose(episode))[CHUNKS_DISAGREE].flagged is True
    steady = synthetic_episode([line_chunk(start, start)] * 6, starts=[5 * i for i in range(6)])
    assert by_name(diagnose(steady))[CHUNKS_DISAGREE].flagged is False
    no_overlap = synthetic_episode([line_chunk(start, start)] * 3, starts=[0, 10, 20])
    finding = by_name(diagnose(no_overlap))[CHUNKS_DISAGREE]
    assert finding.flagged is None and "not measurable" in finding.detail


def test_actions_beyond_the_dataset_range_are_reported() -> None:
    start = np.array([0.2, 0.0, 0.1])
    chunks = [line_chunk(start, start + np.array([0.0, 0.0, 0.3]), gripper=40.0) for _ in range(3)]
    episode = synthetic_episode(chunks, starts=[0, 5, 10])
    stats = {
        "min": np.array([0.1, -0.1, 0.0, -1, -1, -1, 0.0]),
        "max": np.array([0.3, 0.1, 0.2, 1, 1, 1, 100.0]),
        "mean": np.zeros(7),
        "std": np.ones(7),
    }
    finding = by_name(diagnose(episode, stats, ["x", "y", "z", "ax", "ay", "az", "gripper"]))[OUT_OF_RANGE]
    assert finding.flagged is True and "mostly z" in finding.detail
    wrong_width = {key: value[:6] for key, value in stats.items()}
    assert by_name(diagnose(episode, wrong_width))[OUT_OF_RANGE].flagged is None


def test_summary_counts_episodes_per_check(expert, env, dataset_stats) -> None:
    _, still = record_whisker_episode(ConstantPolicy(), env, seed=6)
    per_episode = [diagnose(expert, dataset_stats), diagnose(still, dataset_stats)]
    summaries = {summary.name: summary for summary in summarize_findings(per_episode)}
    assert summaries[DOES_NOT_MOVE].flagged == 1 and summaries[DOES_NOT_MOVE].measured == 2
    assert summaries[MEAN_REGRESSION].measured == 2
