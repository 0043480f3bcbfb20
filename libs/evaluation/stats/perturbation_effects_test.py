from __future__ import annotations

import math

import pytest

from libs.evaluation.fixtures import record
from libs.evaluation.stats.perturbation_effects import (
    arm_differences,
    arms_section,
    paired_difference_interval,
)


def test_agresti_min_interval_by_hand() -> None:
    # 2×2 table: arm only 1, control only 6, both 10, neither 3 (n = 20); +0.5 per cell -> n* = 22.
    low, high = paired_difference_interval(arm_only=1, control_only=6, both=10, neither=3)
    p_arm, p_control = 1.5 / 22, 6.5 / 22
    difference = p_arm - p_control
    half = 1.959963984540054 * math.sqrt((p_arm + p_control - difference**2) / 22)
    assert (low, high) == pytest.approx((difference - half, difference + half))
    # No discordant pairs is not "certainly no effect": the interval keeps some width.
    low, high = paired_difference_interval(0, 0, 10, 0)
    assert low < 0 < high


def test_each_arm_is_compared_with_its_own_control_on_shared_seeds() -> None:
    control = [record("200", seed, "success", progress=1.0) for seed in range(10)]
    dim = [
        record("200", seed, "success" if seed < 4 else "never_picked_up", progress=0.2, arm="dim")
        for seed in range(10)
    ]
    (difference,) = arm_differences(control + dim, ["200"], ["dim", "absent"])
    assert (difference.arm, difference.seeds) == ("dim", 10)
    assert difference.success_difference == pytest.approx(-0.6)
    assert difference.success_difference_ci95[1] < 0
    assert difference.progress_difference == pytest.approx(-0.8)
    section = arms_section([difference])
    assert "| 200 | dim | 10 | 10/10 | 4/10 | -60" in section.markdown
    assert "whole interval is below the control: dim (200)" in section.markdown
