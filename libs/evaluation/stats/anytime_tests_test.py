from __future__ import annotations

import math

import numpy as np
import pytest

from libs.evaluation.stats.anytime_tests import (
    MixtureSPRT,
    SequentialTestError,
    paired_progress_sequential,
    paired_sequential,
    target_sequential,
)

ALPHA = 0.05
SIMULATIONS = 4000


def binomial_upper_tolerance(rate: float, trials: int, z: float = 3.29) -> float:
    """The largest rejection fraction a test of true level ``rate`` shows over ``trials`` independent
    simulations, except with probability ~1e-3 (normal bound on a binomial count, z = 3.29 one-sided).
    A test whose real type-I error exceeded alpha would fail this check far more often."""
    return rate + z * math.sqrt(rate * (1 - rate) / trials)


def first_crossing(test: MixtureSPRT, successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
    return (test.log_e(successes, failures) >= test.log_threshold - 1e-12).any(axis=1)


@pytest.mark.parametrize("max_trials", [None, 60])
@pytest.mark.parametrize("null_rate", [0.5, 0.8])
def test_null_rejected_at_most_alpha_when_looking_after_every_episode(max_trials, null_rate):
    """Validity under repeated looks: a test checked after every single episode (the most looks a sweep
    can make) rejects a true null in at most alpha of simulated runs, within a binomial tolerance."""
    rng = np.random.default_rng(7)
    horizon = max_trials or 200
    trials = rng.random((SIMULATIONS, horizon)) < null_rate
    successes = np.cumsum(trials, axis=1)
    failures = np.arange(1, horizon + 1) - successes
    test = MixtureSPRT(null_rate, ALPHA, max_trials)
    rejected = first_crossing(test, successes, failures).mean()
    assert rejected <= binomial_upper_tolerance(ALPHA, SIMULATIONS)


def test_paired_null_with_correlated_seeds_rejected_at_most_alpha():
    """Two equally good checkpoints whose outcomes share easy and hard seeds (strongly correlated pairs),
    looked at after every pair of the budget."""
    rng = np.random.default_rng(11)
    pairs = 80
    easy = rng.random((SIMULATIONS, pairs)) < 0.6
    first = np.where(easy, rng.random((SIMULATIONS, pairs)) < 0.9, rng.random((SIMULATIONS, pairs)) < 0.2)
    second = np.where(easy, rng.random((SIMULATIONS, pairs)) < 0.9, rng.random((SIMULATIONS, pairs)) < 0.2)
    wins = np.cumsum(first & ~second, axis=1)
    losses = np.cumsum(~first & second, axis=1)
    test = MixtureSPRT(0.5, ALPHA, pairs)
    assert first_crossing(test, wins, losses).mean() <= binomial_upper_tolerance(ALPHA, SIMULATIONS)


def test_exact_crossing_probability_matches_simulation_and_alpha():
    test = MixtureSPRT(0.5, ALPHA, 40)
    level = test.log_threshold
    exact = test.crossing_probability(level)
    assert exact <= ALPHA
    # The budget threshold is tighter than Ville's 1/alpha: the point of knowing the budget.
    assert level < math.log(1 / ALPHA)
    rng = np.random.default_rng(3)
    trials = rng.random((SIMULATIONS, 40)) < 0.5
    successes = np.cumsum(trials, axis=1)
    failures = np.arange(1, 41) - successes
    simulated = first_crossing(test, successes, failures).mean()
    assert abs(simulated - exact) <= 4 * math.sqrt(exact * (1 - exact) / SIMULATIONS)


def test_e_value_is_the_beta_binomial_likelihood_ratio():
    test = MixtureSPRT(0.5, prior_strength=1.0)  # Beta(1, 1): uniform prior
    # 3 successes, 1 failure: B(4, 2) / B(1, 1) / 0.5^4 = (3! 1! / 5!) * 16 = 0.8
    assert test.log_e(3, 1) == pytest.approx(math.log(0.8))
    assert test.log_e(0, 0) == pytest.approx(0.0)


def test_clear_winner_is_decided_early_and_says_which_way():
    first = [True] * 30
    second = [False] * 30
    decision = paired_sequential("200", first, "100", second, ALPHA, max_pairs=30)
    assert decision.verdict == "first_better"
    assert decision.decided_at_episode is not None and decision.decided_at_episode < 10
    assert decision.episodes_saved == 30 - decision.decided_at_episode
    assert decision.p_value <= ALPHA
    assert "200 is better than 100" in decision.wording
    flipped = paired_sequential("100", second, "200", first, ALPHA, max_pairs=30)
    assert flipped.verdict == "second_better"


def test_ties_carry_no_evidence():
    same = [True, False] * 20
    decision = paired_sequential("a", same, "b", same, ALPHA, max_pairs=40)
    assert decision.verdict == "undecided"
    assert decision.trials == 0
    assert decision.e_value == pytest.approx(1.0)
    assert "Undecided" in decision.wording


def test_target_rate_above_and_below():
    above = target_sequential("ckpt", [True] * 40, 0.5, ALPHA, max_episodes=40)
    below = target_sequential("ckpt", [False] * 40, 0.5, ALPHA, max_episodes=40)
    assert above.verdict == "above_target"
    assert below.verdict == "below_target"
    near = target_sequential("ckpt", [True, False] * 10, 0.5, ALPHA, max_episodes=40)
    assert near.verdict == "undecided"


def test_progress_betting_null_is_valid_and_a_gap_is_found():
    rng = np.random.default_rng(5)
    rejected = 0
    runs = 1000
    for _ in range(runs):
        scores = rng.integers(0, 6, size=(2, 60)) / 5.0
        rejected += paired_progress_sequential("a", scores[0], "b", scores[1], ALPHA).decided
    assert rejected / runs <= binomial_upper_tolerance(ALPHA, runs)
    better = np.full(40, 0.6) + rng.normal(0, 0.1, 40).clip(-0.3, 0.3)
    worse = np.full(40, 0.2)
    decision = paired_progress_sequential("a", better, "b", worse, ALPHA)
    assert decision.verdict == "first_better"


def test_progress_betting_stays_valid_on_rare_large_differences_and_decides_a_clear_gap_fast():
    # Mostly ties with a rare +-1: the plug-in stake swings to its cap on a few lucky episodes, the null case
    # where a large cap could hurt validity; looked at after every episode.
    rng = np.random.default_rng(11)
    runs = 2000
    differences = rng.choice([-1.0, 0.0, 1.0], p=[0.05, 0.9, 0.05], size=(runs, 200))
    rejected = sum(
        paired_progress_sequential("a", row.clip(0, 1), "b", (-row).clip(0, 1), ALPHA).decided
        for row in differences
    )
    assert rejected / runs <= binomial_upper_tolerance(ALPHA, runs)
    # Four stages more on every seed: decided within 8 episodes (the cap of 0.5 needed 12).
    clear = paired_progress_sequential("a", [1.0] * 20, "b", [0.2] * 20, ALPHA)
    assert clear.verdict == "first_better"
    assert clear.decided_at_episode is not None and clear.decided_at_episode <= 8


def test_bad_numbers_name_the_fix():
    with pytest.raises(SequentialTestError, match="between 0 and 1"):
        MixtureSPRT(1.0)
    with pytest.raises(SequentialTestError, match="--alpha"):
        MixtureSPRT(0.5, alpha=0)
    with pytest.raises(SequentialTestError, match="--max-episodes"):
        MixtureSPRT(0.5, max_trials=0)
