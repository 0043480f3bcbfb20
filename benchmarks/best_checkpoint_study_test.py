"""The best-checkpoint study's oracle and run grouping on tiny synthetic profiles: the oracle stakes the
growth-optimal fraction, a stricter level never makes it faster, and a checkpoint swept on its own joins its
training run."""

from __future__ import annotations

import numpy as np

from benchmarks.best_checkpoint_study import (
    ORACLES,
    oracle_episodes,
    oracle_stakes,
    simulate,
    training_runs,
)


def _profiles() -> np.ndarray:
    rng = np.random.default_rng(7)
    difficulty = rng.random(100)
    # Five checkpoints that solve the seeds easier than their skill (correlated, as real sweeps are).
    return np.array([difficulty < rate for rate in (0.9, 0.85, 0.6, 0.3, 0.0)])


def test_the_oracle_stakes_everything_on_a_checkpoint_that_is_never_behind() -> None:
    successes = _profiles()
    stakes = oracle_stakes(successes, 0.05)
    # The 90% checkpoint succeeds on every seed the 30% one does: every difference is >= 0.
    assert stakes[0, 3] >= 0.99
    # Ahead on 3 seeds in 4 and behind on 1 (even at ε = 0.05): Kelly's fraction, well below everything.
    pair = np.array([[True, True, True, False] * 25, [False, False, False, True] * 25])
    assert 0.3 < oracle_stakes(pair, 0.05)[0, 1] < 0.7


def test_a_stricter_level_never_makes_the_oracle_faster_and_it_beats_the_fixed_sweep() -> None:
    successes = _profiles()
    rates = successes.mean(axis=1)
    rng = np.random.default_rng(3)
    drawn = np.tile(np.arange(5), (200, 1))
    outcomes = successes[drawn[:, None, :], rng.integers(0, 100, size=(200, 100))[:, :, None]]
    stakes = (oracle_stakes(successes, 0.05), oracle_stakes(successes, 0.0))
    spent = oracle_episodes(outcomes, drawn, rates, stakes, 0.05)
    assert set(spent) == {name for name, _, _ in ORACLES}
    assert (spent["oracle"] <= spent["oracle at δ/(K − 1)"]).all()
    assert (spent["oracle at δ/(K − 1), no pausing"] <= 5 * 100).all()
    figures = simulate(successes, 5, 0.05, 100, 300, np.random.default_rng(1))
    assert figures["oracle_fewer_by"] >= figures["fewer_by"] > 1.0
    assert figures["error_rate"] <= 0.05


def test_a_checkpoint_swept_on_its_own_joins_its_training_run() -> None:
    sweeps = {
        "pi0-s2000": {"007000": {0: (True, 1.0)}},
        "pi0-s2000-3500": {"003500": {0: (False, 0.2)}},
        "act-s1000": {"002000": {0: (True, 1.0)}},
        "act-s1000-2000": {"002000": {0: (True, 1.0)}},  # the same checkpoint again: kept apart
    }
    runs = training_runs(sweeps)
    assert sorted(runs) == ["act-s1000", "act-s1000-2000", "pi0-s2000"]
    assert sorted(runs["pi0-s2000"]) == ["003500", "007000"]
