from __future__ import annotations

import math

import pytest

from libs.evaluation.fixtures import record
from libs.evaluation.stats.sample_sizes import (
    PairRates,
    PlanError,
    SimulationSettings,
    binomial_pmf,
    binomial_test_power,
    connor_pairs,
    mcnemar_power,
    normal_target_episodes,
    plan_paired,
    plan_target,
    rates_from_pilot,
)


def test_mcnemar_power_matches_the_closed_form_when_the_second_never_wins_alone():
    """With only_second = 0 every discordant seed is the first's, and the exact test at alpha 0.05 rejects
    as soon as there are 6 of them (2 / 2^6 < 0.05 <= 2 / 2^5): power = P(Binomial(n, psi) >= 6)."""
    rates = PairRates(first=0.9, second=0.6, only_first=0.3, only_second=0.0)
    for n in (5, 6, 12, 30):
        closed_form = 1.0 - sum(math.comb(n, d) * 0.3**d * 0.7 ** (n - d) for d in range(min(6, n + 1)))
        assert mcnemar_power(n, rates) == pytest.approx(closed_form, abs=1e-12)


def test_fixed_plan_is_the_first_n_reaching_the_power_and_agrees_with_connor():
    for first, second in [(0.8, 0.5), (0.6, 0.3), (0.9, 0.7)]:
        rates = PairRates.independent(first, second)
        plan = plan_paired(rates, power=0.8, settings=SimulationSettings(runs=500))
        assert mcnemar_power(plan.fixed_episodes, rates) >= 0.8
        assert mcnemar_power(plan.fixed_episodes - 1, rates) < 0.8
        # Connor's normal approximation (the closed form) lands within 15% of the exact answer.
        assert plan.fixed_episodes == pytest.approx(connor_pairs(rates, 0.8), rel=0.15)


def test_connor_formula_by_hand():
    rates = PairRates(first=0.5, second=0.3, only_first=0.3, only_second=0.1)
    z_a, z_b = 1.959963984540054, 0.8416212335729143
    by_hand = (z_a * math.sqrt(0.4) + z_b * math.sqrt(0.4 - 0.04)) ** 2 / 0.04
    assert connor_pairs(rates, 0.8) == pytest.approx(by_hand)


def test_target_plan_agrees_with_the_normal_formula_and_exact_power():
    plan = plan_target(0.9, 0.7, power=0.8, settings=SimulationSettings(runs=500))
    assert binomial_test_power(plan.fixed_episodes, 0.9, 0.7) >= 0.8
    assert plan.fixed_episodes == pytest.approx(normal_target_episodes(0.9, 0.7, 0.8), rel=0.2)
    # Exact power at n = 1 by hand: no single episode can reach p < 0.05, so power is 0.
    assert binomial_test_power(1, 0.9, 0.7) == 0.0
    assert binomial_pmf(3, 0.5).sum() == pytest.approx(1.0)


def test_sequential_plan_reaches_the_power_and_spends_less_when_the_difference_holds():
    plan = plan_paired(PairRates.independent(0.9, 0.5), power=0.8, settings=SimulationSettings(runs=1000))
    assert plan.sequential_power >= 0.8
    assert plan.sequential_mean_episodes < plan.fixed_episodes
    # With no difference the sequential test mostly runs to its budget.
    assert plan.sequential_mean_episodes_if_equal > 0.8 * plan.sequential_budget
    assert "--max-episodes" in plan.table()


def test_rates_from_a_pilot_sweep():
    records = [record("200", seed, "success" if seed < 8 else "never_picked_up") for seed in range(10)] + [
        record("100", seed, "success" if seed < 4 else "never_picked_up") for seed in range(10)
    ]
    first, second, rates, shared = rates_from_pilot(records)
    assert (first, second, shared) == ("200", "100", 10)
    assert rates.first == pytest.approx(0.8) and rates.second == pytest.approx(0.4)
    assert rates.only_first == pytest.approx(0.4) and rates.only_second == 0.0


def test_impossible_plans_name_the_fix():
    with pytest.raises(PlanError, match="--rates"):
        plan_paired(PairRates.independent(0.5, 0.5))
    with pytest.raises(PlanError, match="--power"):
        plan_paired(PairRates.independent(0.8, 0.5), power=1.0)
    with pytest.raises(PlanError, match="two"):
        rates_from_pilot([record("200", 0, "success")])
