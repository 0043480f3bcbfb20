from __future__ import annotations

import pytest

from libs.evaluation.fixtures import record
from libs.evaluation.stats.metrics import exact_mcnemar_p, paired_comparison, summarize, wilson_interval


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-3) and high == pytest.approx(1.0)
    low, high = wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.4902, abs=1e-3), pytest.approx(0.9433, abs=1e-3))
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_exact_mcnemar() -> None:
    assert exact_mcnemar_p(2, 0) == pytest.approx(0.5)
    assert exact_mcnemar_p(0, 0) == 1.0
    assert exact_mcnemar_p(10, 0) == pytest.approx(2 / 1024)


def test_summary_rates() -> None:
    records = [
        record("045000", 0, "success"),
        record("045000", 1, "dropped_during_transport"),
        record("045000", 2, "never_picked_up", picked=False),
        record("045000", 3, "success"),
    ]
    summary = summarize(records)
    assert summary.success_rate == 0.5 and summary.pick_rate == 0.75
    assert summary.drop_rate == pytest.approx(1 / 3)
    assert summary.outcome_counts["never_picked_up"] == 1
    assert summary.mean_steps_of_successes == pytest.approx(101.5)
    assert summary.ik_failure_rate is None  # joint policy


def test_ee_summary_reports_ik() -> None:
    records = [
        record("1", 0, "success", action_space="ee", ik_failures=3, ik_error_mm_mean=2.0),
        record("1", 1, "success", action_space="ee", ik_failures=1, ik_error_mm_mean=4.0),
    ]
    summary = summarize(records)
    assert summary.ik_failure_rate == pytest.approx(4 / 201)
    assert summary.ik_error_mm_mean == pytest.approx(3.0)


def test_paired_comparison_says_100_vs_80_over_10_is_not_shown() -> None:
    best = [record("045000", seed, "success") for seed in range(10)]
    outcomes = ["success"] * 8 + ["dropped_during_transport"] * 2
    other = [record("050000", seed, outcome) for seed, outcome in enumerate(outcomes)]
    comparison = paired_comparison(best, other)
    assert (comparison.only_best, comparison.only_runner_up) == (2, 0)
    assert comparison.p_value == pytest.approx(0.5)
    assert not comparison.significant
    assert "do not show that 045000 is better" in comparison.wording


def test_progress_mean_interval_and_stage_counts() -> None:
    records = [
        record("100", seed, "never_picked_up", picked=False, progress=p)
        for seed, p in enumerate([0.0, 0.2, 0.4, 0.4, 0.6, 0.8])
    ]
    summary = summarize(records)
    assert summary.progress_mean == pytest.approx(0.4)
    low, high = summary.progress_ci95
    assert low < 0.4 < high and 0.0 <= low and high <= 1.0
    assert summary.progress_stage_counts == {
        "none": 1,
        "approached": 1,
        "grasped": 2,
        "lifted": 1,
        "over_bowl": 1,
        "placed": 0,
    }
    old_store = summarize([record("100", 0, "success")])  # written before progress existed
    assert old_store.progress_mean is None and old_store.progress_stage_counts == {}
