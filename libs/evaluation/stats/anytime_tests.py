"""Anytime-valid sequential tests: stop running episodes as soon as they decide the question.

Two questions reduce to one statistic.

- **Two checkpoints on paired seeds.** Only discordant seeds (one checkpoint succeeded, the other did not)
  carry evidence about which is better. If both had the same success rate, each discordant seed would be
  the first checkpoint's win with probability exactly 1/2, whatever the rates and however strongly the seeds
  correlate the two. So the comparison is a test of "rate = 1/2" on the stream of discordant seeds
  (1 = the first checkpoint won).
- **One checkpoint against a target rate p0.** A test of "rate = p0" on its stream of successes.

The statistic is a mixture likelihood ratio (a mixture sequential probability ratio test): the stream's
likelihood averaged over a Beta(a, b) prior on the unknown rate, divided by its likelihood at the null rate,

    E_n = B(s + a, f + b) / B(a, b) / (p0^s (1 - p0)^f)        (s successes, f failures in n trials).

Under the null each likelihood ratio (q/p0)^s ((1-q)/(1-p0))^f is a nonnegative martingale starting at 1,
and so is their prior average E_n. Ville's inequality then gives P(sup_n E_n >= 1/alpha) <= alpha: rejecting
the first time E_n reaches 1/alpha is valid however often, and whenever, one looks. E_n is the e-value the
report shows. The prior is centred on the null; how wide it is follows the budget (``MixtureSPRT.strength``):
a small budget is planned for a large difference, a large budget for a small one.

**A budget tightens the threshold.** With at most N trials (``--max-episodes``), Ville's bound is loose:
the null probability that E reaches c within N trials can be computed exactly (dynamic programming over the
binomial lattice of (successes, failures)), and the smallest c whose crossing probability is <= alpha is a
valid threshold for a test that looks after every trial, and so after any subset of trials (rounds of
episodes), since looking less often can only cross less often. For the paired test the number of discordant
seeds within N pairs is random but at most N, and a walk that may run N steps crosses at least as often as
one cut shorter, so calibrating at N discordant trials holds for any concordance rate. The budget must be
fixed before the first look (the sweep stores it with its settings); Ville's 1/alpha needs no budget.

The anytime p-value is the null probability that the running maximum of E reaches the maximum seen so far
(within the budget; min(1, 1/max E) without one): it is valid at any stopping time.

For bounded paired differences (progress scores in [0, 1], so differences in [-1, 1]) the same martingale
idea is written as a bet: wealth K_n = prod (1 + lambda_i D_i) with lambda_i fixed before D_i is seen and
|lambda_i| < 1 stays nonnegative and, under "mean difference 0", is a martingale, so Ville applies again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from libs.errors import LabError

#: Pseudo-trials of the Beta prior on each side of the null rate (a + b = 2 * this) when there is no budget.
DEFAULT_PRIOR_STRENGTH = 2.0
#: With a budget, the prior follows it: a small budget was planned for a large difference (a wide prior,
#: decided in a few trials), a large one for a small difference (a prior concentrated near the null). One
#: pseudo-trial per this many budgeted trials, within PRIOR_STRENGTH_RANGE; chosen with the simulation study
#: (benchmarks/sequential_study.py).
BUDGET_PER_PRIOR_TRIAL = 50.0
PRIOR_STRENGTH_RANGE = (0.5, 4.0)
#: The largest budget the exact calibration accepts (its cost grows as the square of the budget).
MAX_CALIBRATED_TRIALS = 5_000


class SequentialTestError(LabError, ValueError):
    """A sequential test was set up with impossible numbers; the message names the fix."""


@dataclass(frozen=True)
class MixtureSPRT:
    """Two-sided mixture SPRT of "success rate = ``null_rate``" on a stream of 0/1 trials.

    ``max_trials`` (the budget) switches Ville's threshold 1/alpha for the exact finite-budget one.
    """

    null_rate: float
    alpha: float = 0.05
    max_trials: int | None = None
    prior_strength: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.null_rate < 1.0:
            raise SequentialTestError(
                f"null rate {self.null_rate} must be strictly between 0 and 1: a target of 0% or 100% "
                "is decided by a single episode; pick e.g. 0.95"
            )
        if not 0.0 < self.alpha < 1.0:
            raise SequentialTestError(f"--alpha {self.alpha} must be between 0 and 1, e.g. 0.05")
        if self.max_trials is not None and not 1 <= self.max_trials <= MAX_CALIBRATED_TRIALS:
            raise SequentialTestError(
                f"--max-episodes {self.max_trials} must be between 1 and {MAX_CALIBRATED_TRIALS}"
            )
        if self.prior_strength is not None and self.prior_strength <= 0:
            raise SequentialTestError(f"prior strength {self.prior_strength} must be positive")

    @property
    def strength(self) -> float:
        """Pseudo-trials of the prior on each side: as given, else from the budget, else the default."""
        if self.prior_strength is not None:
            return self.prior_strength
        if self.max_trials is None:
            return DEFAULT_PRIOR_STRENGTH
        low, high = PRIOR_STRENGTH_RANGE
        return min(high, max(low, self.max_trials / BUDGET_PER_PRIOR_TRIAL))

    @property
    def prior(self) -> tuple[float, float]:
        return (2 * self.strength * self.null_rate, 2 * self.strength * (1 - self.null_rate))

    def log_e(self, successes: Any, failures: Any) -> Any:
        """log E for (arrays of) success and failure counts; numpy-vectorised."""
        s = np.asarray(successes, dtype=np.int64)
        f = np.asarray(failures, dtype=np.int64)
        a, b = self.prior
        top = int(max(int(s.max(initial=0)), int(f.max(initial=0)))) + 1
        lg_a, lg_b, lg_ab = _lgamma_table(a, top), _lgamma_table(b, top), _lgamma_table(a + b, 2 * top)
        log_prior_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
        value = (
            lg_a[s]
            + lg_b[f]
            - lg_ab[s + f]
            - log_prior_norm
            - s * math.log(self.null_rate)
            - f * math.log1p(-self.null_rate)
        )
        return float(value) if np.ndim(value) == 0 else value

    @property
    def log_threshold(self) -> float:
        """Reject once log E reaches this: log(1/alpha), or the exact budget threshold (never above it)."""
        if self.max_trials is None:
            return math.log(1.0 / self.alpha)
        return _calibrated_log_threshold(self.null_rate, self.alpha, self.max_trials, self.strength)

    def crossing_probability(self, log_level: float) -> float:
        """Null probability that log E reaches ``log_level`` within the budget (Ville's bound without one)."""
        if self.max_trials is None:
            return min(1.0, math.exp(-log_level)) if log_level > 0 else 1.0
        return _crossing_probability(self.null_rate, self.max_trials, self.strength, float(log_level))

    def run(self, outcomes: Sequence[bool]) -> StreamResult:
        """Walk the test along ``outcomes`` in order (the order the trials were fixed in, e.g. seed order)."""
        values = np.asarray([bool(v) for v in outcomes], dtype=bool)
        successes = np.cumsum(values)
        failures = np.arange(1, len(values) + 1) - successes
        log_e = self.log_e(successes, failures) if len(values) else np.zeros(0)
        threshold = self.log_threshold
        crossed = np.flatnonzero(log_e >= threshold - 1e-12)
        stop = int(crossed[0]) + 1 if crossed.size else None
        # Evidence after the first crossing is not used: the decision is the one made when it crossed.
        seen = log_e[:stop] if stop is not None else log_e
        running_max = float(seen.max()) if seen.size else 0.0
        at = stop if stop is not None else len(values)
        s_at = int(successes[at - 1]) if at else 0
        return StreamResult(
            trials=len(values),
            successes=int(successes[-1]) if len(values) else 0,
            decided_at_trial=stop,
            successes_at_decision=s_at if stop is not None else None,
            log_e=float(log_e[-1]) if len(values) else 0.0,
            max_log_e=running_max,
            log_threshold=threshold,
            p_value=min(1.0, self.crossing_probability(running_max)) if seen.size else 1.0,
        )


@dataclass(frozen=True)
class StreamResult:
    """Where a test stands after a stream of trials."""

    trials: int
    successes: int
    #: The trial (1-based) at which E first reached the threshold, or None.
    decided_at_trial: int | None
    successes_at_decision: int | None
    log_e: float
    max_log_e: float
    log_threshold: float
    #: Anytime-valid p-value at the decision (or now, when undecided).
    p_value: float

    @property
    def decided(self) -> bool:
        return self.decided_at_trial is not None


@lru_cache(maxsize=64)
def _lgamma_table(shift: float, size: int) -> np.ndarray:
    """lgamma(k + shift) for k = 0 .. size-1 (sizes rounded up so the cache stays small)."""
    size = 1 << max(6, (size - 1).bit_length())
    return np.array([math.lgamma(k + shift) for k in range(size)])


def _lattice_log_e(null_rate: float, max_trials: int, prior_strength: float) -> list[np.ndarray]:
    test = MixtureSPRT(null_rate, max_trials=None, prior_strength=prior_strength)
    rows = []
    for n in range(1, max_trials + 1):
        s = np.arange(n + 1)
        rows.append(np.asarray(test.log_e(s, n - s)))
    return rows


@lru_cache(maxsize=4)
def _lattice(null_rate: float, max_trials: int, prior_strength: float) -> tuple[np.ndarray, ...]:
    return tuple(_lattice_log_e(null_rate, max_trials, prior_strength))


def _crossing_probability(null_rate: float, max_trials: int, prior_strength: float, level: float) -> float:
    """Exact null probability that log E reaches ``level`` within ``max_trials`` trials: the mass of the
    binomial walk absorbed at the first lattice point where log E >= level."""
    rows = _lattice(null_rate, max_trials, prior_strength)
    alive = np.array([1.0])
    absorbed = 0.0
    for row in rows:
        step = np.zeros(alive.size + 1)
        step[1:] += null_rate * alive  # a success moves one column right
        step[:-1] += (1.0 - null_rate) * alive
        hit = row >= level - 1e-12
        absorbed += float(step[hit].sum())
        step[hit] = 0.0
        alive = step
    return absorbed


@lru_cache(maxsize=256)
def _calibrated_log_threshold(
    null_rate: float, alpha: float, max_trials: int, prior_strength: float
) -> float:
    """The lowest level of log E whose null crossing probability within the budget is <= alpha (never
    above Ville's log(1/alpha), which is always valid). Crossing probability falls as the level rises, so
    bisection finds it; 40 halvings of log(1/alpha) put it within 1e-11 of the exact lattice value."""
    low, high = 0.0, math.log(1.0 / alpha)
    for _ in range(40):
        middle = 0.5 * (low + high)
        if _crossing_probability(null_rate, max_trials, prior_strength, middle) <= alpha:
            high = middle
        else:
            low = middle
    return high


# --------------------------------------------------------------------------- the two questions


@dataclass(frozen=True)
class SequentialDecision:
    """The answer of a sequential test, in the report's words."""

    question: str  # "paired" | "target"
    first: str
    #: The other checkpoint's id (paired) or the target rate as text (target).
    second: str
    alpha: float
    #: Episodes per checkpoint the budget allows (None: no budget, Ville's threshold).
    max_episodes: int | None
    #: Episodes per checkpoint run so far, and at the decision (None while undecided).
    episodes: int
    decided_at_episode: int | None
    #: "first_better" | "second_better" | "above_target" | "below_target" | "undecided"
    verdict: str
    e_value: float
    threshold_e_value: float
    p_value: float
    #: Trials the statistic used: discordant seeds (paired) or episodes (target), and the first's wins.
    trials: int
    wins: int
    wording: str

    @property
    def decided(self) -> bool:
        return self.verdict != "undecided"

    @property
    def episodes_saved(self) -> int | None:
        """Episodes per checkpoint the budget allowed but the decision did not need."""
        if self.max_episodes is None or self.decided_at_episode is None:
            return None
        return self.max_episodes - self.decided_at_episode

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"decided": self.decided, "episodes_saved": self.episodes_saved}


def _e(log_value: float) -> float:
    return math.exp(min(log_value, 700.0))


def paired_sequential(
    first_id: str,
    first: Sequence[bool],
    second_id: str,
    second: Sequence[bool],
    alpha: float = 0.05,
    max_pairs: int | None = None,
    prior_strength: float | None = None,
) -> SequentialDecision:
    """Sequential comparison of two checkpoints' successes on the same seeds, given in seed order."""
    if len(first) != len(second):
        raise SequentialTestError(
            f"paired test needs the same seeds for both checkpoints ({len(first)} vs {len(second)} given)"
        )
    test = MixtureSPRT(0.5, alpha, max_pairs, prior_strength)
    discordant_at = [i + 1 for i, (a, b) in enumerate(zip(first, second, strict=True)) if bool(a) != bool(b)]
    stream = [bool(first[i - 1]) for i in discordant_at]
    result = test.run(stream)
    decided_at = discordant_at[result.decided_at_trial - 1] if result.decided_at_trial else None
    if result.decided:
        wins = result.successes_at_decision or 0
        verdict = "first_better" if 2 * wins > result.decided_at_trial else "second_better"
    else:
        wins, verdict = result.successes, "undecided"
    n = len(first)
    only_first = sum(bool(a) and not bool(b) for a, b in zip(first, second, strict=True))
    only_second = len(stream) - only_first
    head = (
        f"Sequential paired test (mixture SPRT on discordant seeds, alpha {alpha:g}"
        + (f", budget {max_pairs} episodes each" if max_pairs else ", no budget")
        + f"): after {n} shared seeds, {only_first} went only to {first_id} and {only_second} only to "
        f"{second_id}; e-value {_e(result.log_e):.3g} (decides at {_e(result.log_threshold):.3g}), "
        f"anytime p = {result.p_value:.3g}. "
    )
    tail = _paired_verdict_words(verdict, first_id, second_id, n, decided_at, max_pairs, alpha)
    return SequentialDecision(
        question="paired",
        first=first_id,
        second=second_id,
        alpha=alpha,
        max_episodes=max_pairs,
        episodes=n,
        decided_at_episode=decided_at,
        verdict=verdict,
        e_value=_e(result.log_e),
        threshold_e_value=_e(result.log_threshold),
        p_value=result.p_value,
        trials=len(stream),
        wins=wins,
        wording=head + tail,
    )


def _paired_verdict_words(
    verdict: str,
    first_id: str,
    second_id: str,
    episodes: int,
    decided_at: int | None,
    max_pairs: int | None,
    alpha: float,
) -> str:
    if verdict == "undecided":
        remaining = f" of {max_pairs}" if max_pairs else ""
        return (
            f"Undecided after {episodes}{remaining} episodes each: the difference is too small for these "
            "episodes to separate the two; raise --max-episodes or compare progress scores."
        )
    better, worse = (first_id, second_id) if verdict == "first_better" else (second_id, first_id)
    saved = f", {max_pairs - (decided_at or 0)} fewer than the budget" if max_pairs else ""
    return (
        f"Decided at episode {decided_at} of each{saved}: {better} is better than {worse} "
        f"at the {alpha:g} level."
    )


def target_sequential(
    checkpoint_id: str,
    successes: Sequence[bool],
    target_rate: float,
    alpha: float = 0.05,
    max_episodes: int | None = None,
    prior_strength: float | None = None,
) -> SequentialDecision:
    """Sequential test of one checkpoint's success rate against ``target_rate``, episodes in seed order."""
    test = MixtureSPRT(target_rate, alpha, max_episodes, prior_strength)
    result = test.run(successes)
    n = len(successes)
    if result.decided:
        at = result.decided_at_trial or 0
        wins = result.successes_at_decision or 0
        verdict = "above_target" if wins > target_rate * at else "below_target"
    else:
        at, wins, verdict = None, result.successes, "undecided"
    head = (
        f"Sequential test against a target of {target_rate:.0%} (mixture SPRT, alpha {alpha:g}"
        + (f", budget {max_episodes} episodes" if max_episodes else ", no budget")
        + f"): {result.successes}/{n} successes; e-value {_e(result.log_e):.3g} (decides at "
        f"{_e(result.log_threshold):.3g}), anytime p = {result.p_value:.3g}. "
    )
    if verdict == "undecided":
        tail = (
            f"Undecided after {n} episodes: the rate is too close to {target_rate:.0%} for these episodes "
            "to tell; raise --max-episodes."
        )
    else:
        side = "above" if verdict == "above_target" else "below"
        saved = f", {max_episodes - at} fewer than the budget" if max_episodes else ""
        tail = (
            f"Decided at episode {at}{saved}: {checkpoint_id}'s success rate is {side} {target_rate:.0%} "
            f"at the {alpha:g} level."
        )
    return SequentialDecision(
        question="target",
        first=checkpoint_id,
        second=f"{target_rate:g}",
        alpha=alpha,
        max_episodes=max_episodes,
        episodes=n,
        decided_at_episode=at,
        verdict=verdict,
        e_value=_e(result.log_e),
        threshold_e_value=_e(result.log_threshold),
        p_value=result.p_value,
        trials=n,
        wins=wins,
        wording=head + tail,
    )


# --------------------------------------------------------------------------- bounded differences


#: Largest stake of the betting test (a fraction of the wealth on one episode). The plug-in stake already
#: shrinks for small drifts; the cap only binds where one checkpoint is clearly ahead, and there 0.9 decides a
#: difference of +0.8 per episode at the 8th episode where 0.5 needed 12: on the real pairs of
#: benchmarks/partial_credit_study.py the median episodes fell from 1.36x to 0.99x fixed-n McNemar's. Any cap
#: below 1 keeps the wealth positive (|difference| <= 1), so the test stays valid whatever the cap.
MAX_BET = 0.9


def betting_log_wealth(differences: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-wealth of two bettors on paired differences in [-1, 1]: one betting the mean is positive, one
    negative. Each stake is fixed from the earlier differences only (predictable), so under "mean 0" both
    wealths are nonnegative martingales.

    The stake is the plug-in growth-optimal fraction mean / (mean^2 + variance) of the differences seen so
    far (shrunk toward 0 by one pseudo-difference of variance 1/4 so the first bets are small), clipped to
    [0, MAX_BET]. ``differences`` may be one stream or rows of streams (runs × episodes, one wealth per
    row, all rows walked together: the simulation studies).
    """
    values = np.clip(np.asarray(differences, dtype=np.float64), -1.0, 1.0)
    rows = values.reshape(-1, values.shape[-1]) if values.size else values.reshape(1, 0)
    up = np.zeros(rows.shape)
    down = np.zeros(rows.shape)
    total = np.zeros(rows.shape[0])
    total_sq = np.zeros(rows.shape[0])
    log_up = np.zeros(rows.shape[0])
    log_down = np.zeros(rows.shape[0])
    for i in range(rows.shape[1]):
        d = rows[:, i]
        count = i + 1.0  # earlier differences + the pseudo-difference
        stake = (total / count) / ((total_sq + 0.25) / count)
        log_up += np.log1p(np.clip(stake, 0.0, MAX_BET) * d)
        log_down += np.log1p(-np.clip(-stake, 0.0, MAX_BET) * d)
        up[:, i], down[:, i] = log_up, log_down
        total += d
        total_sq += d * d
    return up.reshape(values.shape), down.reshape(values.shape)


def paired_progress_sequential(
    first_id: str,
    first: Sequence[float],
    second_id: str,
    second: Sequence[float],
    alpha: float = 0.05,
) -> SequentialDecision:
    """Sequential comparison of two checkpoints' progress scores (each in [0, 1]) on the same seeds.

    E = (wealth_up + wealth_down) / 2, an average of two martingales: reject at 1/alpha (Ville).
    """
    if len(first) != len(second):
        raise SequentialTestError(
            f"paired test needs the same seeds for both checkpoints ({len(first)} vs {len(second)} given)"
        )
    differences = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    up, down = betting_log_wealth(differences)
    log_e = np.logaddexp(up, down) - math.log(2.0)
    threshold = math.log(1.0 / alpha)
    crossed = np.flatnonzero(log_e >= threshold)
    n = len(first)
    at = int(crossed[0]) + 1 if crossed.size else None
    if at is not None:
        verdict = "first_better" if up[at - 1] >= down[at - 1] else "second_better"
    else:
        verdict = "undecided"
    seen = log_e[:at] if at is not None else log_e
    max_log_e = float(seen.max()) if seen.size else 0.0
    mean_difference = float(differences.mean()) if n else 0.0
    head = (
        f"Sequential paired test on progress (betting e-process, alpha {alpha:g}): mean progress difference "
        f"{first_id} − {second_id} = {mean_difference:+.3f} over {n} shared seeds; e-value "
        f"{_e(float(log_e[-1]) if n else 0.0):.3g} (decides at {1 / alpha:.3g}). "
    )
    if at is None:
        tail = "Undecided: progress does not separate the two on these episodes."
    else:
        better, worse = (first_id, second_id) if verdict == "first_better" else (second_id, first_id)
        tail = f"Decided at episode {at}: {better} makes more progress than {worse} at the {alpha:g} level."
    return SequentialDecision(
        question="paired_progress",
        first=first_id,
        second=second_id,
        alpha=alpha,
        max_episodes=None,
        episodes=n,
        decided_at_episode=at,
        verdict=verdict,
        e_value=_e(float(log_e[-1]) if n else 0.0),
        threshold_e_value=1.0 / alpha,
        p_value=min(1.0, math.exp(-max_log_e)) if n else 1.0,
        trials=n,
        wins=int((differences > 0).sum()),
        wording=head + tail,
    )
