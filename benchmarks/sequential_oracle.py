"""The most a sequential comparison can save when it knows the answer: an oracle for the simulation study.

The sweep's test (``libs/evaluation/stats/anytime_tests.py``) does not know how much better one checkpoint
is, so it averages over a prior. The oracle is told the true rates: its statistic is Wald's likelihood ratio
for the
true discordant win rate q against 1/2, two-sided (the average of the ratios for q and 1 - q), with the same
anytime-valid threshold as the sweep's test (exact for the budget, calibrated by dynamic programming over
the discordant walk). Wald and Wolfowitz showed that the SPRT of the true alternative has the smallest mean
sample size of all tests with its error rates, so no anytime-valid test of this question can beat it by much
(the budget's calibration and the two sides keep it from being exactly optimal). Its power and mean episodes
are computed exactly, over every (wins, losses) path, not simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from libs.evaluation.stats.sample_sizes import MAX_PLANNED_EPISODES, PairRates, PlanError


@dataclass(frozen=True)
class OracleDesign:
    budget: int
    power: float
    mean_episodes: float


def two_sided_log_lr(win_rate: float, max_trials: int) -> list[np.ndarray]:
    """log of (LR(q) + LR(1-q)) / 2 for every (wins, losses) after n = 0..max_trials discordant trials;
    row n is indexed by wins."""
    rows = []
    for n in range(max_trials + 1):
        wins = np.arange(n + 1)
        losses = n - wins
        towards = wins * math.log(2 * win_rate) + losses * math.log(2 * (1 - win_rate))
        away = wins * math.log(2 * (1 - win_rate)) + losses * math.log(2 * win_rate)
        rows.append(np.logaddexp(towards, away) - math.log(2))
    return rows


def null_crossing(rows: list[np.ndarray], level: float) -> float:
    """Probability, when each discordant trial is a win with probability 1/2, that the statistic reaches
    ``level`` within the trials ``rows`` covers."""
    alive = np.array([1.0])
    absorbed = 0.0
    for row in rows[1:]:
        step = np.zeros(alive.size + 1)
        step[1:] += 0.5 * alive
        step[:-1] += 0.5 * alive
        hit = row >= level - 1e-12
        absorbed += float(step[hit].sum())
        step[hit] = 0.0
        alive = step
    return absorbed


def calibrated_level(rows: list[np.ndarray], alpha: float) -> float:
    """The lowest level whose null crossing probability is <= alpha (never above Ville's log(1/alpha))."""
    low, high = 0.0, math.log(1.0 / alpha)
    for _ in range(40):
        middle = 0.5 * (low + high)
        if null_crossing(rows, middle) <= alpha:
            high = middle
        else:
            low = middle
    return high


def exact_power_and_mean(
    rows: list[np.ndarray], level: float, rates: PairRates, budget: int
) -> tuple[float, float]:
    """(rejection probability, mean pairs run) over every path of ``budget`` pairs: a pair is a win, a loss
    or concordant (no move) with the rates' chances; the test stops when the statistic reaches ``level``."""
    win, loss = rates.only_first, rates.only_second
    tie = 1.0 - win - loss
    reject = np.zeros((budget + 1, budget + 1), dtype=bool)  # [wins, losses]
    for n in range(1, budget + 1):
        wins = np.arange(n + 1)
        reject[wins, n - wins] = rows[n] >= level - 1e-12
    alive = np.zeros((budget + 1, budget + 1))
    alive[0, 0] = 1.0
    power = mean = 0.0
    for pair in range(1, budget + 1):
        step = alive * tie
        step[1:, :] += alive[:-1, :] * win
        step[:, 1:] += alive[:, :-1] * loss
        stopped = float(step[reject].sum())
        power += stopped
        mean += pair * stopped
        step[reject] = 0.0
        alive = step
    mean += budget * float(alive.sum())
    return power, mean


def _evaluate(rates: PairRates, budget: int, alpha: float) -> OracleDesign:
    win_rate = rates.only_first / rates.discordant
    rows = two_sided_log_lr(win_rate, budget)
    power, mean = exact_power_and_mean(rows, calibrated_level(rows, alpha), rates, budget)
    return OracleDesign(budget, power, mean)


def oracle_design(rates: PairRates, power: float, alpha: float = 0.05, start: int = 8) -> OracleDesign:
    """The smallest budget at which the oracle reaches ``power`` (growing by a tenth, then back one at a
    time), with its exact power and mean episodes per checkpoint."""
    if rates.discordant <= 0 or rates.only_first == rates.only_second:
        raise PlanError("the oracle needs two different rates")
    budget = max(2, start)
    design = _evaluate(rates, budget, alpha)
    while design.power < power:
        if budget >= MAX_PLANNED_EPISODES:
            raise PlanError(f"the oracle needs more than {MAX_PLANNED_EPISODES} episodes for this power")
        budget = min(MAX_PLANNED_EPISODES, budget + max(1, budget // 10))
        design = _evaluate(rates, budget, alpha)
    while budget > 2:
        smaller = _evaluate(rates, budget - 1, alpha)
        if smaller.power < power:
            break
        budget, design = budget - 1, smaller
    return design
