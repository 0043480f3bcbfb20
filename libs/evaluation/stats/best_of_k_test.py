"""Best-of-K selection: the pair bounds hold under a look after every seed, the best is dropped and a
checkpoint more than ε below it is named at most δ of the time, and the walk's edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from libs.evaluation.stats.best_of_k import (
    BUDGET,
    ONE_LEFT,
    RUNNING,
    WITHIN_EPSILON,
    SelectionError,
    fewest_wins,
    log_wealth,
    lower_bound,
    pair_level,
    select_best,
    walk_selections,
)


def correlated_outcomes(rates: list[float], runs: int, seeds: int, seed: int = 0) -> np.ndarray:
    """[runs, seeds, K] successes sharing one difficulty per seed (paired seeds correlate checkpoints)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.random((runs, seeds, 1))
    noise = rng.random((runs, seeds, len(rates)))
    # Half of each outcome is the seed's difficulty: each checkpoint keeps its rate, pairs correlate.
    mixed = np.where(rng.random((runs, seeds, len(rates))) < 0.5, difficulty, noise)
    return mixed < np.asarray(rates)


def test_lower_bound_holds_at_every_seed_at_once() -> None:
    """The running lower bound on p_a − p_b stays below the true difference on ≥ 1 − α of the paths,
    looking after every one of 300 seeds."""
    outcomes = correlated_outcomes([0.6, 0.5], runs=1000, seeds=300, seed=1)
    wins = np.cumsum(outcomes[:, :, 0] & ~outcomes[:, :, 1], axis=1)
    losses = np.cumsum(outcomes[:, :, 1] & ~outcomes[:, :, 0], axis=1)
    seeds = np.arange(1, 301)[None, :]
    alpha = 0.1
    crossed = log_wealth(wins, losses, seeds, 0.1) >= math.log(1 / alpha)
    assert crossed.any(axis=1).mean() <= alpha
    bounds = lower_bound(wins[:50, ::30], losses[:50, ::30], seeds[:, ::30], alpha)
    assert (bounds <= 0.1 + 1e-9).mean() >= 1 - alpha
    assert (bounds[:, -1] > 0).mean() > 0.25  # and it learns: 271 seeds often show 0.6 > 0.5


def test_the_best_is_rarely_dropped_and_the_named_one_is_within_epsilon() -> None:
    rates = [0.70, 0.67, 0.6, 0.5, 0.3]
    walk = walk_selections(correlated_outcomes(rates, runs=1500, seeds=300, seed=2), epsilon=0.05, delta=0.05)
    best_dropped = walk.dropped_at[:, 0] > 0
    assert best_dropped.mean() <= 0.05
    named_rate = np.asarray(rates)[walk.chosen]
    decided = np.isin(walk.verdict, [1, 2])
    assert ((named_rate < 0.70 - 0.05) & decided).mean() <= 0.05
    assert (walk.dropped_at[:, 4] > 0).mean() > 0.95  # the 30% one goes early
    assert walk.episodes.mean() < 5 * 300


def test_equal_checkpoints_none_is_dropped_more_than_delta() -> None:
    """All equally good (each is a best): a given one is dropped at most δ of the time."""
    walk = walk_selections(
        correlated_outcomes([0.5] * 4, runs=1500, seeds=200, seed=3), epsilon=0.05, delta=0.1
    )
    assert (walk.dropped_at > 0).mean(axis=0).max() <= 0.1


def test_a_clearly_worse_checkpoint_is_dropped_with_its_bound() -> None:
    outcomes = {"good": [True] * 60, "bad": [False] * 60, "middle": [True, False] * 30}
    selection = select_best(["good", "bad", "middle"], outcomes, epsilon=0.05, delta=0.05, max_episodes=60)
    drops = {drop.checkpoint: drop for drop in selection.drops}
    assert drops["bad"].by == "good" and drops["bad"].lower_bound > 0
    assert drops["bad"].e_value >= 1 / pair_level(0.05, 3)
    # "middle" (50%) need not be dropped: it is shown not within ε above "good" first, which ends the walk.
    assert (
        selection.verdict == WITHIN_EPSILON
        and selection.chosen == "good"
        and "bad" not in selection.remaining
    )
    assert selection.gap_upper_bounds["middle"] < 0.05
    assert selection.seeds_walked["bad"] == drops["bad"].episodes


def test_one_left_when_the_others_are_dropped() -> None:
    outcomes = {"good": [True] * 40, "bad": [False] * 40}
    selection = select_best(["bad", "good"], outcomes, epsilon=0.01, delta=0.05, max_episodes=40)
    assert selection.verdict == ONE_LEFT and selection.remaining == ["good"] and selection.chosen == "good"


def test_one_checkpoint_is_named_without_an_episode() -> None:
    selection = select_best(["only"], {"only": []}, epsilon=0.05, delta=0.05, max_episodes=10)
    assert selection.verdict == ONE_LEFT and selection.chosen == "only" and selection.walked == 0


def test_two_identical_checkpoints_are_within_epsilon_after_enough_seeds() -> None:
    same = [True, False, True, True] * 50
    selection = select_best(["a", "b"], {"a": same, "b": same}, epsilon=0.05, delta=0.05, max_episodes=200)
    assert selection.verdict == WITHIN_EPSILON and 20 < selection.walked < 200
    assert selection.gap_upper_bounds["b"] < 0.05 and not selection.drops


def test_the_budget_ends_a_selection_it_cannot_decide() -> None:
    a = [True, False] * 10
    b = [False, True] * 10
    selection = select_best(["a", "b"], {"a": a, "b": b}, epsilon=0.05, delta=0.05, max_episodes=20)
    assert selection.verdict == BUDGET and selection.walked == 20 and selection.remaining == ["a", "b"]


def test_a_resumed_walk_stops_at_the_first_gap_and_agrees_with_one_look() -> None:
    """Mid-round (one checkpoint has fewer seeds) the walk waits there; with every seed it reaches the same
    decision as walking all at once, whatever order the rounds came in."""
    outcomes = correlated_outcomes([0.8, 0.5, 0.4], runs=1, seeds=120, seed=4)[0]
    names = ["a", "b", "c"]
    full = {name: list(outcomes[:, k]) for k, name in enumerate(names)}
    partial = dict(full, c=full["c"][:7] + [None] * 113)
    waiting = select_best(names, partial, epsilon=0.05, delta=0.05, max_episodes=120)
    assert waiting.verdict == RUNNING and waiting.walked <= 7
    done = select_best(names, full, epsilon=0.05, delta=0.05, max_episodes=120)
    again = select_best(
        names, {name: list(v) for name, v in full.items()}, epsilon=0.05, delta=0.05, max_episodes=120
    )
    assert done == again and done.finished


def test_fewest_wins_matches_the_wealth() -> None:
    level = pair_level(0.05, 10)
    table = fewest_wins(level, -0.05, 60)
    n, losses = 50, 3
    need = int(table[n, losses])
    assert log_wealth(need, losses, n, -0.05) >= math.log(1 / level)
    assert log_wealth(need - 1, losses, n, -0.05) < math.log(1 / level)


def test_bad_numbers_are_one_line() -> None:
    with pytest.raises(SelectionError, match="--epsilon"):
        select_best(["a", "b"], {}, epsilon=0.0, delta=0.05, max_episodes=5)
    with pytest.raises(SelectionError, match="--delta"):
        select_best(["a", "b"], {}, epsilon=0.05, delta=1.5, max_episodes=5)
