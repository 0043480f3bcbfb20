"""The variants' walker is the sweep's walk when it pools nothing and stakes the sweep's stakes, so the
variants are measured against the rule the sweep runs, not a re-implementation of it."""

from __future__ import annotations

import numpy as np

from benchmarks.sequential_selection_variants import Variant, walk_variant
from libs.evaluation.stats.best_of_k import STAKES, walk_selections


def test_the_walker_without_pooling_is_the_sweeps_walk() -> None:
    rng = np.random.default_rng(4)
    rates = np.array([0.9, 0.85, 0.6, 0.3, 0.1])
    outcomes = rng.random((200, 100, 5)) < rates
    for epsilon in (0.05, 0.10):
        walk = walk_selections(outcomes, epsilon, 0.05)
        episodes, chosen = walk_variant(outcomes, epsilon, Variant("the sweep's", STAKES))
        assert (episodes == walk.episodes).all()
        assert (chosen == walk.chosen).all()


def test_pooled_evidence_drops_a_hopeless_checkpoint_sooner() -> None:
    rng = np.random.default_rng(5)
    # Eight good checkpoints and one that never succeeds: many others beat it, the pooled wealth adds up.
    outcomes = rng.random((100, 100, 9)) < np.array([0.9] * 8 + [0.0])
    pairwise, _ = walk_variant(outcomes, 0.05, Variant("pairwise", STAKES))
    pooled, _ = walk_variant(outcomes, 0.05, Variant("pooled", STAKES, 0.8))
    assert pooled.mean() < pairwise.mean()
