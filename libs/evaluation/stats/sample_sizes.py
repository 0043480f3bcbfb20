"""How many episodes a comparison needs: the fixed-n design and the sequential one, side by side.

Two checkpoints on paired seeds are described by the chance that a seed goes only to the first
(``only_first``) and only to the second (``only_second``); with rates alone the two are taken as independent
(``only_first = p1 (1 - p2)``), which is conservative when seeds correlate the two (easy seeds are easy
for both), as they usually do.

- **Fixed n** (exact McNemar test, what the report runs afterwards): power is computed exactly, summing over
  the number of discordant seeds d ~ Binomial(n, only_first + only_second) the chance that the first's share
  of them lands in the exact test's rejection region. The planner returns the smallest n with the wanted
  power, and Connor's normal-approximation formula as a closed-form check.
- **Sequential** (``libs.evaluation.stats.anytime_tests``, the sweep's ``--until-decided``): no closed form,
  so the planner simulates it (vectorised, a few thousand comparisons per budget) and returns the smallest
  budget
  (``--max-episodes``) whose power reaches the target, with the mean episodes it spends when the rates hold.

The same two designs exist for one checkpoint against a target rate (exact binomial test vs the sequential
test), with the normal-approximation formula as the closed-form check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

from libs.errors import LabError
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.stats.anytime_tests import MAX_CALIBRATED_TRIALS, MixtureSPRT

#: Fixed-n searches stop here: a difference that needs more is reported as too small to plan for.
MAX_PLANNED_EPISODES = MAX_CALIBRATED_TRIALS
DEFAULT_SIMULATIONS = 4000


class PlanError(LabError, ValueError):
    """Rates that cannot be planned for; the message names the fix."""


@dataclass(frozen=True)
class PairRates:
    """Per-seed chances for two checkpoints on the same seed."""

    first: float
    second: float
    only_first: float
    only_second: float

    @classmethod
    def independent(cls, first: float, second: float) -> PairRates:
        for rate in (first, second):
            if not 0.0 <= rate <= 1.0:
                raise PlanError(f"rate {rate} is not a probability: give success rates in [0, 1], e.g. 0.8")
        return cls(first, second, first * (1 - second), second * (1 - first))

    @property
    def discordant(self) -> float:
        return self.only_first + self.only_second

    @property
    def difference(self) -> float:
        return self.only_first - self.only_second


# --------------------------------------------------------------------------- binomial helpers


def _log_binomial_pmf(n: int, p: float) -> np.ndarray:
    k = np.arange(n + 1)
    log_choose = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
    with np.errstate(divide="ignore"):
        return (
            log_choose + k * np.log(p) + (n - k) * np.log1p(-p)
            if 0 < p < 1
            else np.where(k == (0 if p <= 0 else n), 0.0, -np.inf)
        )


def binomial_pmf(n: int, p: float) -> np.ndarray:
    return np.exp(_log_binomial_pmf(n, p))


@lru_cache(maxsize=16)
def _mcnemar_reject_given_discordant(max_discordant: int, share: float, alpha: float) -> np.ndarray:
    """P(exact McNemar rejects | d discordant seeds) for d = 0..max_discordant, when each discordant seed
    is the first's with probability ``share``. It rejects when min(wins, losses) <= k, for the largest k
    with 2 P(Bin(d, 1/2) <= k) < alpha (libs.evaluation.stats.metrics.exact_mcnemar_p < alpha)."""
    out = np.zeros(max_discordant + 1)
    for d in range(1, max_discordant + 1):
        null_cdf = np.cumsum(binomial_pmf(d, 0.5))
        inside = np.flatnonzero(2.0 * null_cdf < alpha)
        if inside.size == 0:
            continue
        k = int(inside[-1])
        pmf = binomial_pmf(d, share)
        out[d] = pmf[: k + 1].sum() + pmf[d - k :].sum()
    return out


def mcnemar_power(pairs: int, rates: PairRates, alpha: float = 0.05) -> float:
    """Exact power of the fixed-n exact McNemar test on ``pairs`` seeds."""
    if rates.discordant <= 0:
        return 0.0
    share = rates.only_first / rates.discordant
    given = _mcnemar_reject_given_discordant(_rounded_up(pairs), round(share, 12), alpha)
    return float(binomial_pmf(pairs, rates.discordant) @ given[: pairs + 1])


def _rounded_up(n: int) -> int:
    """Cache the conditional rejection table in a few sizes rather than one per n."""
    return max(64, 1 << (n - 1).bit_length())


def connor_pairs(rates: PairRates, power: float, alpha: float = 0.05) -> float:
    """Connor's (1987) normal-approximation sample size for McNemar's test (closed form, not rounded)."""
    delta, psi = rates.difference, rates.discordant
    if delta == 0:
        return math.inf
    z_alpha = NormalDist().inv_cdf(1 - alpha / 2)
    z_power = NormalDist().inv_cdf(power)
    return (z_alpha * math.sqrt(psi) + z_power * math.sqrt(psi - delta * delta)) ** 2 / (delta * delta)


def binomial_test_power(episodes: int, rate: float, target: float, alpha: float = 0.05) -> float:
    """Exact power of the two-sided exact binomial test of "rate = target" (twice the smaller tail)."""
    null = binomial_pmf(episodes, target)
    lower = np.cumsum(null)
    upper = np.cumsum(null[::-1])[::-1]
    p_values = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    return float(binomial_pmf(episodes, rate)[p_values < alpha].sum())


def normal_target_episodes(rate: float, target: float, power: float, alpha: float = 0.05) -> float:
    """Normal-approximation sample size of the one-sample test of a rate (closed form, not rounded)."""
    if rate == target:
        return math.inf
    z_alpha = NormalDist().inv_cdf(1 - alpha / 2)
    z_power = NormalDist().inv_cdf(power)
    spread = z_alpha * math.sqrt(target * (1 - target)) + z_power * math.sqrt(rate * (1 - rate))
    return spread**2 / (rate - target) ** 2


def smallest_n(power_at: Any, power: float, guess: float) -> int:
    """The smallest n with power_at(n) >= power, scanning up from below a closed-form guess (exact power
    steps up and down with n, so the first n that reaches it is the answer, as is usual)."""
    start = 1 if not math.isfinite(guess) else max(1, int(0.6 * guess))
    while start > 1 and power_at(start) >= power:
        start = max(1, start // 2)
    for n in range(start, MAX_PLANNED_EPISODES + 1):
        if power_at(n) >= power:
            return n
    raise PlanError(
        f"more than {MAX_PLANNED_EPISODES} episodes would be needed: the difference is too small to plan "
        "for; "
        "plan for a larger difference or accept lower --power"
    )


# --------------------------------------------------------------------------- sequential, simulated


@dataclass(frozen=True)
class SequentialSimulation:
    budget: int
    power: float
    mean_episodes: float
    runs: int


@dataclass(frozen=True)
class SimulationSettings:
    """How sequential tests are simulated: their level, how many runs, the random seed, the prior's strength
    (None: ``MixtureSPRT``'s own, from the budget)."""

    alpha: float = 0.05
    runs: int = DEFAULT_SIMULATIONS
    seed: int = 0
    prior_strength: float | None = None


DEFAULT_SETTINGS = SimulationSettings()


def simulate_paired(
    rates: PairRates, budget: int, settings: SimulationSettings = DEFAULT_SETTINGS
) -> SequentialSimulation:
    """``settings.runs`` simulated sequential comparisons looking after every pair (vectorised)."""
    rng = np.random.default_rng(settings.seed)
    draws = rng.random((settings.runs, budget))
    wins = np.cumsum(draws < rates.only_first, axis=1)
    losses = np.cumsum((draws >= rates.only_first) & (draws < rates.discordant), axis=1)
    test = MixtureSPRT(0.5, settings.alpha, budget, settings.prior_strength)
    return _summarise(test, wins, losses, budget)


def simulate_target(
    rate: float, target: float, budget: int, settings: SimulationSettings = DEFAULT_SETTINGS
) -> SequentialSimulation:
    """Simulated sequential tests of one checkpoint at ``rate`` against ``target``, looking every episode."""
    rng = np.random.default_rng(settings.seed)
    successes = np.cumsum(rng.random((settings.runs, budget)) < rate, axis=1)
    failures = np.arange(1, budget + 1) - successes
    test = MixtureSPRT(target, settings.alpha, budget, settings.prior_strength)
    return _summarise(test, successes, failures, budget)


def _summarise(
    test: MixtureSPRT, successes: np.ndarray, failures: np.ndarray, budget: int
) -> SequentialSimulation:
    hit = test.log_e(successes, failures) >= test.log_threshold - 1e-12
    rejected = hit.any(axis=1)
    stopped = np.where(rejected, hit.argmax(axis=1) + 1, budget)
    return SequentialSimulation(budget, float(rejected.mean()), float(stopped.mean()), int(hit.shape[0]))


def smallest_budget(simulate: Any, power: float, start: int) -> SequentialSimulation:
    """The smallest budget whose simulated power reaches ``power``: doubling, then bisection."""
    low, high = 0, max(2, start)
    result = simulate(high)
    while result.power < power:
        if high >= MAX_PLANNED_EPISODES:
            raise PlanError(
                f"the sequential test needs more than {MAX_PLANNED_EPISODES} episodes for this power: plan "
                "for a larger difference or accept lower --power"
            )
        low, high = high, min(MAX_PLANNED_EPISODES, 2 * high)
        result = simulate(high)
    while high - low > max(1, high // 50):
        middle = (low + high) // 2
        trial = simulate(middle)
        if trial.power >= power:
            high, result = middle, trial
        else:
            low = middle
    return result


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Plan:
    """Episodes per checkpoint for each design (paired), or for the one checkpoint (target)."""

    question: str  # "paired" | "target"
    description: str
    alpha: float
    power: float
    fixed_episodes: int
    fixed_power: float
    closed_form_episodes: float
    sequential_budget: int
    sequential_power: float
    sequential_mean_episodes: float
    #: What the sequential test spends when there is no difference (it runs to the budget mostly).
    sequential_mean_episodes_if_equal: float
    simulations: int

    @property
    def saving(self) -> float:
        """1 − sequential mean / fixed n, when the planned difference holds."""
        return 1.0 - self.sequential_mean_episodes / self.fixed_episodes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"saving": self.saving}

    def table(self) -> str:
        rows = [
            ("design", "episodes", "power", "note"),
            (
                "fixed n (exact test)",
                str(self.fixed_episodes),
                f"{self.fixed_power:.3f}",
                f"closed-form normal approximation: {self.closed_form_episodes:.1f}",
            ),
            (
                "sequential (--until-decided)",
                f"{self.sequential_mean_episodes:.1f} mean",
                f"{self.sequential_power:.3f}",
                f"--max-episodes {self.sequential_budget}; "
                f"{self.sequential_mean_episodes_if_equal:.1f} mean if there is no difference",
            ),
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)


def plan_paired(
    rates: PairRates, power: float = 0.9, settings: SimulationSettings = DEFAULT_SETTINGS
) -> Plan:
    alpha = settings.alpha
    _check_levels(power, alpha)
    if rates.difference == 0:
        raise PlanError(
            f"the two rates give no difference to detect (only-first {rates.only_first:.3f} = only-second "
            f"{rates.only_second:.3f}): give the rates you want to tell apart, e.g. --rates 0.8 0.6"
        )
    closed = connor_pairs(rates, power, alpha)
    fixed = smallest_n(lambda n: mcnemar_power(n, rates, alpha), power, closed)
    sequential = smallest_budget(
        lambda budget: simulate_paired(rates, budget, settings),
        power,
        fixed,
    )
    no_difference = PairRates(rates.first, rates.first, rates.discordant / 2, rates.discordant / 2)
    equal = simulate_paired(no_difference, sequential.budget, replace(settings, seed=settings.seed + 1))
    return _plan(
        "paired",
        (
            f"two checkpoints at {rates.first:.0%} and {rates.second:.0%} success on paired seeds "
            f"(seeds going only to the first {rates.only_first:.3f}, "
            f"only to the second {rates.only_second:.3f})"
        ),
        power,
        settings,
        (fixed, mcnemar_power(fixed, rates, alpha), closed),
        (sequential, equal),
    )


def plan_target(
    rate: float, target: float, power: float = 0.9, settings: SimulationSettings = DEFAULT_SETTINGS
) -> Plan:
    alpha = settings.alpha
    _check_levels(power, alpha)
    if not 0 < target < 1 or not 0 <= rate <= 1 or rate == target:
        raise PlanError(
            f"cannot plan rate {rate} against target {target}: give a target strictly between 0 and 1 and "
            "an expected rate that differs from it, e.g. --rate 0.9 --target-rate 0.7"
        )
    closed = normal_target_episodes(rate, target, power, alpha)
    fixed = smallest_n(lambda n: binomial_test_power(n, rate, target, alpha), power, closed)
    sequential = smallest_budget(
        lambda budget: simulate_target(rate, target, budget, settings),
        power,
        fixed,
    )
    equal = simulate_target(target, target, sequential.budget, replace(settings, seed=settings.seed + 1))
    return _plan(
        "target",
        f"one checkpoint expected at {rate:.0%} against a target of {target:.0%}",
        power,
        settings,
        (fixed, binomial_test_power(fixed, rate, target, alpha), closed),
        (sequential, equal),
    )


def _plan(
    question: str,
    description: str,
    power: float,
    settings: SimulationSettings,
    fixed_design: tuple[int, float, float],
    sequential_design: tuple[SequentialSimulation, SequentialSimulation],
) -> Plan:
    """A ``Plan`` from the fixed design (episodes, exact power, closed-form episodes) and the sequential one
    (simulated at the planned rates, then with no difference)."""
    fixed, fixed_power, closed = fixed_design
    sequential, equal = sequential_design
    return Plan(
        question=question,
        description=description,
        alpha=settings.alpha,
        power=power,
        fixed_episodes=fixed,
        fixed_power=fixed_power,
        closed_form_episodes=closed,
        sequential_budget=sequential.budget,
        sequential_power=sequential.power,
        sequential_mean_episodes=sequential.mean_episodes,
        sequential_mean_episodes_if_equal=equal.mean_episodes,
        simulations=settings.runs,
    )


def _check_levels(power: float, alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise PlanError(f"--alpha {alpha} must be in (0, 0.5), e.g. 0.05")
    if not alpha < power < 1:
        raise PlanError(f"--power {power} must be between alpha and 1, e.g. 0.9")


# --------------------------------------------------------------------------- pilot sweeps


def rates_from_pilot(
    records: Sequence[EpisodeRecord], first: str | None = None, second: str | None = None
) -> tuple[str, str, PairRates, int]:
    """(first id, second id, their paired rates, shared seeds) estimated from a pilot sweep's episodes.

    Without ids, the two checkpoints with the highest success rates are compared.
    """
    by_checkpoint: dict[str, dict[int, bool]] = {}
    for record in (record for record in records if record.is_control):  # not the perturbation arms
        by_checkpoint.setdefault(record.checkpoint_id, {})[record.seed] = record.success
    if len(by_checkpoint) < 2:
        raise PlanError(
            f"the pilot holds {len(by_checkpoint)} checkpoint(s): a paired plan needs two; sweep two "
            "checkpoints first, or give --rates"
        )
    for name in (first, second):
        if name is not None and name not in by_checkpoint:
            raise PlanError(
                f"checkpoint {name!r} is not in the pilot: it has {', '.join(sorted(by_checkpoint))}"
            )
    if first is None or second is None:
        ranked = sorted(by_checkpoint, key=lambda c: -sum(by_checkpoint[c].values()) / len(by_checkpoint[c]))
        first = first or next(c for c in ranked if c != second)
        second = second or next(c for c in ranked if c != first)
    a, b = by_checkpoint[first], by_checkpoint[second]
    shared = sorted(a.keys() & b.keys())
    if not shared:
        raise PlanError(f"{first} and {second} share no seeds in the pilot: sweep both on the same seeds")
    n = len(shared)
    only_first = sum(a[s] and not b[s] for s in shared) / n
    only_second = sum(b[s] and not a[s] for s in shared) / n
    rates = PairRates(sum(a[s] for s in shared) / n, sum(b[s] for s in shared) / n, only_first, only_second)
    return first, second, rates, n
