"""Variants of ``--select-best``'s rules measured against the sweep's own walk, on the same bootstrapped real
sweeps as ``benchmarks/best_checkpoint_study.py`` (issue 31: which ideas buy episodes; none was kept).

- **sweep**: the rule the sweep uses (``best_of_k``): a checkpoint is dropped when one other checkpoint's
  bettors' wealth against it (six fixed stakes 2–90%, at m = 0) reaches (K − 1)/δ; the leader is named when
  its wealth at m = −ε against every checkpoint left reaches (K − 1)/δ.
- **wider stakes**: the same with six stakes from 5% to 98% (a near-sure lead can be staked harder).
- **pooled evidence**: k is also dropped when the *average* over the other K − 1 checkpoints of their
  wealth against k (frozen when one leaves) reaches 1/δ_drop. Under "k is the best" every such wealth is a
  nonnegative supermartingale, so their average is too and Ville bounds it by δ_drop, however often looked at;
  a weak checkpoint that many others beat then needs log(1/δ_drop) of evidence instead of
  log((K − 1)/δ). The ε rule keeps its pairwise bounds at the rest of δ, (δ − δ_drop)/(K − 1), and the
  guarantee is the union of the two (δ_drop = 0.8 δ here; the empirical leader is never dropped).

``PYTHONPATH=. python benchmarks/sequential_selection_variants.py --runs 2000``
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.best_checkpoint_study import DELTA, FIXED_SEEDS, load_profiles
from libs.evaluation.stats.best_of_k import STAKES, walk_selections

KS = (5, 10, 20)
EPSILONS = (0.05, 0.10)


@dataclass(frozen=True)
class Variant:
    name: str
    stakes: np.ndarray
    #: Share of δ for the pooled-evidence drops (0: none).
    pooled_share: float = 0.0


VARIANTS = (
    Variant("wider stakes", np.geomspace(0.05, 0.98, 6)),
    Variant("pooled evidence", STAKES, 0.8),
    Variant("pooled evidence, wider stakes", np.geomspace(0.05, 0.98, 6), 0.8),
)


def _mixture_log_wealth(stakes: np.ndarray, wins, losses, seeds, null_difference: float) -> np.ndarray:
    """log of the average wealth of bettors with ``stakes`` (best_of_k.log_wealth's formula)."""
    w, lo, n = (np.asarray(v, dtype=np.float64)[..., None] for v in (wins, losses, seeds))
    m = null_difference
    terms = (
        w * np.log1p(stakes * (1.0 - m) / (1.0 + m))
        + (n - w - lo) * np.log1p(-stakes * m / (1.0 + m))
        + lo * np.log1p(-stakes)
    )
    top = terms.max(axis=-1)
    return top + np.log(np.exp(terms - top[..., None]).mean(axis=-1))


def walk_variant(outcomes: np.ndarray, epsilon: float, variant: Variant) -> tuple[np.ndarray, np.ndarray]:
    """(episodes, named checkpoint) of each selection of ``outcomes[run, seed, k]`` under ``variant``."""
    count, budget, k = outcomes.shape
    counts = np.arange(budget + 1)
    drop_wealth = _mixture_log_wealth(variant.stakes, counts[:, None], counts[None, :], 0, 0.0)
    pair_delta = DELTA * (1.0 - variant.pooled_share)
    pair_threshold = math.log((k - 1) / pair_delta)
    pooled_threshold = math.log(1.0 / (DELTA * variant.pooled_share)) if variant.pooled_share else math.inf
    alive = np.ones((count, k), dtype=bool)
    wins = np.zeros((count, k, k), dtype=np.int32)
    successes = np.zeros((count, k), dtype=np.int32)
    left_at = np.full((count, k), budget, dtype=np.int32)
    running = np.ones(count, dtype=bool)
    chosen = np.zeros(count, dtype=np.int64)
    rows, others = np.arange(count), ~np.eye(k, dtype=bool)
    for n in range(1, budget + 1):
        seed, live = outcomes[:, n - 1, :], alive & running[:, None]
        successes += seed & live
        wins += seed[:, :, None] & ~seed[:, None, :] & live[:, :, None] & live[:, None, :]
        against = np.where(others, drop_wealth[wins, wins.transpose(0, 2, 1)], -np.inf)  # [run, x, k]
        by_one = (np.where(alive[:, :, None], against, -np.inf) >= pair_threshold).any(axis=1)
        pooled = np.logaddexp.reduce(against, axis=1) - math.log(k - 1) >= pooled_threshold
        leader = np.where(alive, successes, -1).argmax(axis=1)
        dropped = (by_one | pooled) & live
        dropped[rows, leader] = False
        left_at[dropped] = n
        alive &= ~dropped
        leader = np.where(alive, successes, -1).argmax(axis=1)
        lead_wins, lead_losses = wins[rows, leader, :], wins[rows, :, leader]
        within = _mixture_log_wealth(variant.stakes, lead_wins, lead_losses, n, -epsilon) >= pair_threshold
        within = within | ~alive
        within[rows, leader] = True
        chosen[running] = leader[running]
        stopped = running & within.all(axis=1)
        left_at[stopped[:, None] & alive] = n
        running &= ~stopped
        if not running.any():
            break
    return left_at.sum(axis=1), chosen


def compare(successes: np.ndarray, k: int, epsilon: float, runs: int, rng) -> dict[str, tuple[float, float]]:
    """(fewer-by against K × 100, error) of the sweep's walk and each variant on the same selections."""
    rates = successes.mean(axis=1)
    drawn = np.argsort(rng.random((runs, len(rates))), axis=1)[:, :k]
    seeds = rng.integers(0, successes.shape[1], size=(runs, FIXED_SEEDS))
    outcomes = successes[drawn[:, None, :], seeds[:, :, None]]
    true = rates[drawn]
    rows = np.arange(runs)

    def figures(episodes: np.ndarray, chosen: np.ndarray) -> tuple[float, float]:
        error = float((true[rows, chosen] < true.max(axis=1) - epsilon - 1e-12).mean())
        return k * FIXED_SEEDS / float(episodes.mean()), error

    walk = walk_selections(outcomes, epsilon, DELTA)
    results = {"sweep": figures(walk.episodes, walk.chosen)}
    for variant in VARIANTS:
        results[variant.name] = figures(*walk_variant(outcomes, epsilon, variant))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="simulated selections per setting")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--k", type=int, nargs="+", default=list(KS), help="checkpoints per selection")
    parser.add_argument("--epsilon", type=float, nargs="+", default=list(EPSILONS))
    arguments = parser.parse_args(argv)
    ids, successes = load_profiles()
    rng = np.random.default_rng(arguments.seed)
    names = ["sweep", *(variant.name for variant in VARIANTS)]
    started = time.perf_counter()
    print(f"{len(ids)} profiles, budget {FIXED_SEEDS}, δ = {DELTA}, {arguments.runs} selections per setting")
    print("| K | ε | " + " | ".join(f"{name}: fewer by, error" for name in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for k in arguments.k:
        for epsilon in arguments.epsilon:
            results = compare(successes, k, epsilon, arguments.runs, rng)
            cells = " | ".join(f"{results[name][0]:.2f}×, {results[name][1]:.4f}" for name in names)
            print(f"| {k} | {epsilon:.2f} | {cells} |")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"({time.perf_counter() - started:.0f} s; load average {load}: the machine is shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
