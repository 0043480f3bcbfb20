"""Best-of-K selection on shared seeds: drop a checkpoint as soon as another is shown better, stop once the
leader is shown within ε of every checkpoint left (``sweep --select-best``).

**One bound per ordered pair.** For checkpoints a and b on the same seeds, the per-seed difference
D = X_a − X_b is in {−1, 0, 1} and its mean is p_a − p_b. A bettor who stakes a fraction c of its wealth on
"the mean is above m" multiplies its wealth by 1 + c (D − m) / (1 + m) per seed (the stake scaled by 1 + m so
the wealth stays nonnegative for every m in (−1, 1)). If the mean is m that product is a nonnegative
martingale starting at 1, and so is the average over the fixed stakes ``STAKES``; by Ville's inequality it
reaches 1/α with probability at most α, *however often it is looked at*. Every factor falls as m rises, so
the wealth does too: the m it rejects form an interval (−1, L], and L is a lower confidence sequence for
p_a − p_b, valid at every seed at once. The wealth depends on the seeds only through their counts (wins of a,
wins of b, ties), so it does not matter in which rounds, or after how many resumes, the seeds were played.

**Level δ/(K − 1), not δ over every pair.** Let b be the best checkpoint (any one, if several tie). Only the
K − 1 bounds "p_x − p_b ≥ L(x over b)" for x ≠ b need to hold: (1) b is dropped only if some x has
L(x over b) > 0, i.e. p_x > p_b, impossible while they hold; (2) the sweep stops naming L only when
L(L over k) > −ε for every k left, so for k = b: p_b − p_L < ε. Each holds with probability 1 − δ/(K − 1),
all of them with probability ≥ 1 − δ (a union bound over K − 1 pairs, since b is one fixed, if unknown,
checkpoint). Whatever the sweep names after stopping this way is within ε of the best with probability
≥ 1 − δ; if the budget ends first, the best is still among the checkpoints left with that probability.

Decisions test the wealth at m = 0 (drop) and m = −ε (within ε) against 1/α, through tables of the fewest
wins that cross for each (seeds, losses): the same tables drive the sweep (``select_best``) and the
vectorised simulation study (``walk_selections``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from libs.errors import LabError

#: The bettors' fixed stakes (fractions of wealth, before the 1 + m scaling): the wealth is their average.
#: Six stakes from 2% to 90% were about as fast as 4 to 12 over differences of 5-30 points
#: (benchmarks/best_checkpoint_study.py); more stakes cost log(count) of evidence, fewer lose the best stake.
STAKES = np.geomspace(0.02, 0.9, 6)

#: The verdicts of a selection.
ONE_LEFT = "one_left"
WITHIN_EPSILON = "within_epsilon"
BUDGET = "budget"
RUNNING = "running"
_VERDICTS = (RUNNING, ONE_LEFT, WITHIN_EPSILON, BUDGET)


class SelectionError(LabError, ValueError):
    """A selection was asked with impossible numbers; the message names the fix."""


def check_selection(epsilon: float, delta: float) -> None:
    if not 0.0 < epsilon < 1.0:
        raise SelectionError(f"--epsilon {epsilon} must be between 0 and 1 (success-rate points), e.g. 0.05")
    if not 0.0 < delta < 1.0:
        raise SelectionError(f"--delta {delta} must be between 0 and 1, e.g. 0.05")


def pair_level(delta: float, checkpoints: int) -> float:
    """The level of each one-sided pair bound (module docstring): δ / (K − 1)."""
    return delta / max(1, checkpoints - 1)


def log_wealth(wins: Any, losses: Any, seeds: Any, null_difference: Any) -> np.ndarray:
    """log of the bettors' average wealth against "p_a − p_b ≤ ``null_difference``" after ``seeds`` shared
    seeds of which a alone succeeded on ``wins`` and b alone on ``losses`` (arrays broadcast together)."""
    w, lo, n, m = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (wins, losses, seeds, null_difference))
    )
    m = m[..., None]
    ties = (n - w - lo)[..., None]
    terms = (
        w[..., None] * np.log1p(STAKES * (1.0 - m) / (1.0 + m))
        + ties * np.log1p(-STAKES * m / (1.0 + m))
        + lo[..., None] * np.log1p(-STAKES)
    )
    top = terms.max(axis=-1)
    return top + np.log(np.exp(terms - top[..., None]).mean(axis=-1))


def lower_bound(wins: Any, losses: Any, seeds: Any, level: float) -> np.ndarray:
    """The lower confidence bound on p_a − p_b at ``level`` (−1 when nothing is rejected): the largest m
    whose wealth reaches 1/level, by bisection (the wealth falls as m rises)."""
    threshold = math.log(1.0 / level)
    shape = np.broadcast(np.asarray(wins), np.asarray(losses), np.asarray(seeds)).shape
    low = np.full(shape, -1.0 + 1e-9)
    high = np.full(shape, 1.0 - 1e-9)
    rejected_low = log_wealth(wins, losses, seeds, low) >= threshold
    for _ in range(40):
        middle = 0.5 * (low + high)
        rejects = log_wealth(wins, losses, seeds, middle) >= threshold
        low = np.where(rejects, middle, low)
        high = np.where(rejects, high, middle)
    return np.where(rejected_low, low, -1.0)


@lru_cache(maxsize=32)
def fewest_wins(level: float, null_difference: float, max_seeds: int) -> np.ndarray:
    """table[n, l]: the fewest wins of a over b that make the wealth against "p_a − p_b ≤ null_difference"
    reach 1/level after n shared seeds with l losses (n + 1 when none do). Turning a tie or a loss into a
    win raises the wealth, so crossing is "wins ≥ table[n, l]"."""
    threshold = math.log(1.0 / level)
    size = max_seeds + 1
    table = np.full((size, size), size, dtype=np.int32)
    for n in range(size):
        wins, losses = np.arange(n + 1)[None, :], np.arange(n + 1)[:, None]
        crossed = (log_wealth(wins, losses, n, null_difference) >= threshold - 1e-12) & (wins + losses <= n)
        first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), n + 1)
        table[n, : n + 1] = first
    return table


@dataclass
class Walk:
    """The state of S selections after walking their seeds (arrays over selections, checkpoints)."""

    alive: np.ndarray  # bool [S, K]
    #: Seeds walked when each checkpoint was dropped (0: never), by whom (−1: none).
    dropped_at: np.ndarray  # int [S, K]
    dropped_by: np.ndarray  # int [S, K]
    #: Seeds walked so far (where a selection stopped, or the first seed a live checkpoint lacks).
    walked: np.ndarray  # int [S]
    verdict: np.ndarray  # int [S]: index into _VERDICTS
    chosen: np.ndarray  # int [S]: the named checkpoint (the leader while running)
    successes: np.ndarray  # int [S, K] over the walked seeds
    #: wins[s, a, b]: walked seeds where a succeeded and b did not.
    wins: np.ndarray

    @property
    def episodes(self) -> np.ndarray:
        """Episodes each selection spent with a look after every seed: seeds walked by each checkpoint."""
        per = np.where(self.dropped_at > 0, self.dropped_at, self.walked[:, None])
        return per.sum(axis=1)

    def verdicts(self) -> list[str]:
        return [_VERDICTS[v] for v in self.verdict]


def walk_selections(
    outcomes: np.ndarray, epsilon: float, delta: float, played: np.ndarray | None = None
) -> Walk:
    """S selections among K checkpoints, vectorised: ``outcomes[s, n, k]`` (bool) is checkpoint k's success
    on the n-th seed (seed order), ``played`` (default: all) whether it has run. Each seed is looked at in
    turn; a selection stops when one checkpoint is left, when the leader is within ε of every checkpoint left,
    at the last seed (the budget), or (still running) at the first seed a checkpoint left has not played."""
    check_selection(epsilon, delta)
    outcomes = np.asarray(outcomes, dtype=bool)
    count, seeds, k = outcomes.shape
    played = np.ones_like(outcomes) if played is None else np.asarray(played, dtype=bool)
    level = pair_level(delta, k)
    drop_table, within_table = fewest_wins(level, 0.0, seeds), fewest_wins(level, -epsilon, seeds)
    walk = Walk(
        alive=np.ones((count, k), dtype=bool),
        dropped_at=np.zeros((count, k), dtype=np.int32),
        dropped_by=np.full((count, k), -1, dtype=np.int32),
        walked=np.zeros(count, dtype=np.int32),
        verdict=np.zeros(count, dtype=np.int8),
        chosen=np.zeros(count, dtype=np.int32),
        successes=np.zeros((count, k), dtype=np.int32),
        wins=np.zeros((count, k, k), dtype=np.int32),
    )
    running = np.ones(count, dtype=bool)
    if k == 1:
        walk.verdict[:] = _VERDICTS.index(ONE_LEFT)
        return walk
    for n in range(1, seeds + 1):
        running &= (played[:, n - 1, :] | ~walk.alive).all(axis=1)
        if not running.any():
            break
        _take_seed(walk, outcomes[:, n - 1, :], running, n, drop_table)
        stopped = _stops(walk, running, n, within_table, last=n == seeds)
        running &= ~stopped
    return walk


def _take_seed(walk: Walk, seed: np.ndarray, running: np.ndarray, n: int, drop_table: np.ndarray) -> None:
    """Counts the n-th seed of the running selections, then drops every live checkpoint another live one is
    now shown better than (by the one with the most wins to spare)."""
    both = running[:, None]
    walk.successes += (seed & both).astype(np.int32)
    walk.wins += (seed[:, :, None] & ~seed[:, None, :] & both[:, :, None]).astype(np.int32)
    walk.walked[running] = n
    losses = walk.wins.transpose(0, 2, 1)
    spare = walk.wins - drop_table[n][losses]  # [s, a, b] >= 0: a shown better than b
    live = walk.alive & both
    beaten = (spare >= 0) & live[:, :, None] & live[:, None, :]
    dropped = beaten.any(axis=1)
    by = np.where(beaten, spare, -1).argmax(axis=1)
    walk.dropped_at[dropped] = n
    walk.dropped_by[dropped] = by[dropped]
    walk.alive &= ~dropped


def _stops(walk: Walk, running: np.ndarray, n: int, within_table: np.ndarray, last: bool) -> np.ndarray:
    """Which running selections stop at seed n, with their verdict and the checkpoint named."""
    leader = np.where(walk.alive, walk.successes, -1).argmax(axis=1)
    rows = np.arange(len(leader))
    leader_wins = walk.wins[rows, leader, :]  # [s, k]: the leader alone succeeded
    leader_losses = walk.wins[rows, :, leader]
    within = (leader_wins >= within_table[n][leader_losses]) | ~walk.alive
    within[rows, leader] = True
    one_left = walk.alive.sum(axis=1) == 1
    all_within = within.all(axis=1)
    walk.chosen[running] = leader[running]
    verdicts = [(one_left, ONE_LEFT), (all_within & ~one_left, WITHIN_EPSILON)]
    if last:
        verdicts.append((~one_left & ~all_within, BUDGET))
    stopped = np.zeros(len(leader), dtype=bool)
    for mask, name in verdicts:
        hit = running & mask
        walk.verdict[hit] = _VERDICTS.index(name)
        stopped |= hit
    return stopped


# --------------------------------------------------------------------------- one sweep's selection


@dataclass(frozen=True)
class Drop:
    checkpoint: str
    by: str
    #: Seeds walked (episodes per checkpoint) when the bound first cleared 0.
    episodes: int
    #: Lower bound on p_by − p_checkpoint at that point (> 0), and the bettors' wealth there.
    lower_bound: float
    e_value: float


@dataclass(frozen=True)
class Selection:
    """Where a best-of-K selection stands, in the report's terms."""

    checkpoints: list[str]
    epsilon: float
    delta: float
    max_episodes: int
    #: running | one_left | within_epsilon | budget
    verdict: str
    #: The checkpoint named (the leader while running).
    chosen: str
    #: Seeds walked: where the selection stopped (or the first seed a checkpoint left has not played).
    walked: int
    remaining: list[str]
    drops: list[Drop]
    #: Successes of each checkpoint over the seeds it walked.
    successes: dict[str, int]
    seeds_walked: dict[str, int]
    #: Upper bound on p_k − p_chosen for each checkpoint k left (what "within ε" is checked against).
    gap_upper_bounds: dict[str, float] = field(default_factory=dict)

    @property
    def decided(self) -> bool:
        return self.verdict in (ONE_LEFT, WITHIN_EPSILON)

    @property
    def finished(self) -> bool:
        return self.verdict != RUNNING

    @property
    def pair_level(self) -> float:
        return pair_level(self.delta, len(self.checkpoints))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"decided": self.decided, "pair_level": self.pair_level}


def select_best(
    checkpoints: list[str],
    outcomes: dict[str, list[bool | None]],
    epsilon: float,
    delta: float,
    max_episodes: int,
) -> Selection:
    """The selection among ``checkpoints`` from each one's outcomes in seed order (None: not played yet),
    over at most ``max_episodes`` seeds; the walk of ``walk_selections`` for one sweep."""
    k, seeds = len(checkpoints), max_episodes
    table = np.zeros((1, seeds, k), dtype=bool)
    played = np.zeros((1, seeds, k), dtype=bool)
    for column, name in enumerate(checkpoints):
        for n, outcome in enumerate(outcomes.get(name, [])[:seeds]):
            if outcome is not None:
                table[0, n, column] = bool(outcome)
                played[0, n, column] = True
    walk = walk_selections(table, epsilon, delta, played)
    level = pair_level(delta, k)
    drops = []
    for column in np.flatnonzero(walk.dropped_at[0] > 0):
        at, by = int(walk.dropped_at[0, column]), int(walk.dropped_by[0, column])
        wins, losses = _pair_counts(table[0, :at], by, column)
        drops.append(
            Drop(
                checkpoint=checkpoints[column],
                by=checkpoints[by],
                episodes=at,
                lower_bound=float(lower_bound(wins, losses, at, level)),
                e_value=math.exp(min(700.0, float(log_wealth(wins, losses, at, 0.0)))),
            )
        )
    drops.sort(key=lambda drop: (drop.episodes, checkpoints.index(drop.checkpoint)))
    return _selection(checkpoints, walk, table[0], drops, epsilon, delta, max_episodes)


def _pair_counts(outcomes: np.ndarray, a: int, b: int) -> tuple[int, int]:
    """(seeds a alone succeeded, seeds b alone succeeded) over ``outcomes[n, k]``."""
    return int((outcomes[:, a] & ~outcomes[:, b]).sum()), int((outcomes[:, b] & ~outcomes[:, a]).sum())


def _selection(
    checkpoints: list[str],
    walk: Walk,
    table: np.ndarray,
    drops: list[Drop],
    epsilon: float,
    delta: float,
    max_episodes: int,
) -> Selection:
    walked = int(walk.walked[0])
    chosen = int(walk.chosen[0])
    remaining = [name for column, name in enumerate(checkpoints) if walk.alive[0, column]]
    seeds_walked = {
        name: int(walk.dropped_at[0, column]) or walked for column, name in enumerate(checkpoints)
    }
    gaps = {}
    for column, name in enumerate(checkpoints):
        if walk.alive[0, column] and column != chosen and walked:
            wins, losses = _pair_counts(table[:walked], chosen, column)
            gaps[name] = -float(lower_bound(wins, losses, walked, pair_level(delta, len(checkpoints))))
    return Selection(
        checkpoints=list(checkpoints),
        epsilon=epsilon,
        delta=delta,
        max_episodes=max_episodes,
        verdict=walk.verdicts()[0],
        chosen=checkpoints[chosen],
        walked=walked,
        remaining=remaining,
        drops=drops,
        successes={
            name: int(table[: seeds_walked[name], column].sum()) for column, name in enumerate(checkpoints)
        },
        seeds_walked=seeds_walked,
        gap_upper_bounds=gaps,
    )
