import numpy as np

from benchmarks.sequential_oracle import (
    calibrated_level,
    exact_power_and_mean,
    oracle_design,
    two_sided_log_lr,
)
from libs.evaluation.stats.sample_sizes import PairRates, mcnemar_power


def simulated(rows, level, rates: PairRates, budget: int, runs: int = 20_000) -> tuple[float, float]:
    draws = np.random.default_rng(0).random((runs, budget))
    wins = np.cumsum(draws < rates.only_first, axis=1)
    losses = np.cumsum((draws >= rates.only_first) & (draws < rates.discordant), axis=1)
    statistic = np.array(
        [
            [rows[won + lost][won] for won, lost in zip(run_wins, run_losses, strict=True)]
            for run_wins, run_losses in zip(wins, losses, strict=True)
        ]
    )
    hit = statistic >= level - 1e-12
    rejected = hit.any(axis=1)
    return float(rejected.mean()), float(np.where(rejected, hit.argmax(axis=1) + 1, budget).mean())


def test_exact_power_and_mean_episodes_agree_with_simulated_comparisons() -> None:
    rates, budget = PairRates.independent(0.8, 0.5), 40
    rows = two_sided_log_lr(rates.only_first / rates.discordant, budget)
    level = calibrated_level(rows, 0.05)
    power, mean = exact_power_and_mean(rows, level, rates, budget)
    sim_power, sim_mean = simulated(rows, level, rates, budget)
    assert abs(power - sim_power) < 0.015 and abs(mean - sim_mean) < 0.4


def test_the_oracles_threshold_keeps_the_type_one_error_under_alpha() -> None:
    budget = 60
    rows = two_sided_log_lr(0.75, budget)
    level = calibrated_level(rows, 0.05)
    for rate in (0.2, 0.5, 0.9):
        rejected, _ = exact_power_and_mean(rows, level, PairRates.independent(rate, rate), budget)
        assert rejected <= 0.05


def test_the_oracle_reaches_the_power_and_needs_fewer_episodes_than_the_fixed_design() -> None:
    rates = PairRates.independent(0.8, 0.5)
    design = oracle_design(rates, 0.9)
    assert design.power >= 0.9
    fixed_power_at_oracle_mean = mcnemar_power(int(design.mean_episodes), rates)
    assert fixed_power_at_oracle_mean < 0.9  # the fixed design needs more episodes for the same power
