"""The partial-credit study's core on a tiny setting: its vectorised progress test is the library's, its
figures have the expected shape, and the null type-I error stays (loosely) under alpha."""

from __future__ import annotations

import math

import numpy as np

from benchmarks.partial_credit_study import (
    growth_optimal_stake,
    load_profiles,
    merge_shards,
    progress_stopping,
    run_study,
    select_pairs,
)
from libs.evaluation.stats.anytime_tests import betting_log_wealth, paired_progress_sequential


def test_vectorised_progress_test_matches_the_library() -> None:
    rng = np.random.default_rng(3)
    # A drift toward the first so that most rows decide, some toward the second, some none.
    differences = np.clip(rng.normal(0.15, 0.5, size=(40, 80)), -1, 1)
    differences[20:30] *= -1
    differences[30:] = rng.normal(0.0, 0.3, size=(10, 80)).clip(-1, 1)
    stop, verdict = progress_stopping(differences, 0.05)
    assert (stop > 0).sum() >= 10
    for row, at, sign in zip(differences, stop, verdict, strict=True):
        up, down = betting_log_wealth(row)
        log_e = np.logaddexp(up, down) - math.log(2.0)
        crossed = np.flatnonzero(log_e >= math.log(20.0))
        assert at == (crossed[0] + 1 if crossed.size else 0)
        decision = paired_progress_sequential("a", np.clip(row, 0, 1), "b", np.clip(-row, 0, 1))
        assert decision.decided_at_episode == (int(at) if at else None)
        expected = {1: "first_better", -1: "second_better", 0: "undecided"}[int(sign)]
        assert decision.verdict == expected


def test_the_oracle_stakes_the_growth_optimal_fraction() -> None:
    # Always +0.5: stake (almost) everything; +1 and -1 equally often: stake nothing; +1 three times in four
    # and -1 once: Kelly's 2p - 1 = 0.5.
    assert growth_optimal_stake(np.full(100, 0.5)) >= 0.99
    assert growth_optimal_stake(np.array([1.0, -1.0] * 50)) == 0.0
    assert abs(growth_optimal_stake(np.array([1.0, 1.0, 1.0, -1.0] * 25)) - 0.5) < 1e-3


def test_tiny_study_shape_and_null_level() -> None:
    ids, success, progress = load_profiles()
    assert success.shape == progress.shape == (len(ids), 100)
    pairs = select_pairs(success, 0.05)
    assert all(success[a].mean() > success[b].mean() for a, b in pairs)
    chosen = pairs[:3]
    settings = {"runs": 300, "cap": 120, "alpha": 0.05, "seed": 5}
    figures = run_study(success[:6], progress[:6], [p for p in chosen if max(p) < 6], settings)
    rows = figures["pairs"]
    assert len(rows) == len([p for p in chosen if max(p) < 6])
    for row in rows:
        assert 0.0 <= row["progress_decided"] <= 1.0
        assert 1 <= row["progress_median_episodes"] <= settings["cap"]
        assert row["progress_first_better"] + row["progress_second_better"] <= 1.0 + 1e-12
        assert row["mcnemar_episodes"] is None or row["mcnemar_episodes"] > 0
        assert 1 <= row["oracle_mean_episodes"] <= settings["cap"]
    assert len(figures["nulls"]) == 6
    # 300 runs: the rejected fraction under the null stays well under a loose bound around alpha = 0.05.
    assert figures["overall"]["worst_null_type_one_error"] <= 0.12


def test_shards_run_at_once_give_the_figures_of_one_run() -> None:
    ids, success, progress = load_profiles()
    pairs = select_pairs(success[:8], 0.05)
    settings = {"runs": 40, "cap": 50, "alpha": 0.05, "seed": 9}
    whole = run_study(success[:8], progress[:8], pairs, settings)
    shards = [run_study(success[:8], progress[:8], pairs, settings, (index, 3)) for index in range(3)]
    merged = merge_shards(shards)
    assert merged["pairs"] == whole["pairs"]
    assert merged["nulls"] == whole["nulls"]
    assert merged["overall"] == whole["overall"]
