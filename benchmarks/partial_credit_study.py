"""Partial credit (issue 31, item 3): does a sequential comparison of the progress score (stages reached)
decide with fewer episodes than the fixed-n exact McNemar design on success, and does it agree with it?

**The claim the progress test makes.** The betting e-process of ``paired_progress_sequential`` tests "the two
checkpoints have the same mean progress on these seeds" (progress = stage reached / 5, paired by seed). When
it decides, it says "A makes more progress than B" at level alpha, anytime-valid: under equal mean progress
its e-value reaches 1/alpha with probability <= alpha however often it is looked at (Ville). It does **not**
test success rates: where the two orderings differ, its verdict is about progress.

**The simulation.** Pairs of the 21 real checkpoints in ``benchmarks/data/success_profiles.json`` (per-seed
success and progress on seeds 0-99) whose success rates differ by at least ``--min-gap`` points, the first
of each pair the one with the higher success rate (the reversed pair is the same comparison with the verdict
flipped). Each simulated comparison bootstraps seed indices with replacement (both checkpoints on the same
drawn seed, so the pairing is kept) into a stream of up to ``--cap`` paired (success, progress) outcomes,
and on that same stream runs

- the progress test (a vectorised ``betting_log_wealth``, threshold 1/alpha): episodes until it decides and
  which way;
- the binary sequential test of the sweep's ``--until-decided`` (``paired_sequential``'s statistic: the
  mixture SPRT on discordant seeds with the threshold calibrated to a budget of ``--cap``): its verdict;

- the oracle: a bettor told the pair's true distribution of progress differences (the 100 stored seeds),
  staking the growth-optimal fixed fraction argmax_l E log(1 + l D) in the true direction from the first
  episode, decided at 2/alpha (the two-sided test's price, as the progress test pays it by averaging its two
  bettors). The growth-optimal stake is the fastest any bettor can grow wealth on average under this
  distribution (Kelly; Waudby-Smith & Ramdas 2023, "Estimating means of bounded random variables by
  betting"), so the oracle's episodes are about the fewest any test of "equal mean progress" valid for
  every bounded distribution can need: the ceiling of partial credit on these pairs;

and against them the fixed-n exact McNemar design at power 0.8 (``sample_sizes.smallest_n`` over
``sample_sizes.mcnemar_power``, exact) from the pair's true discordance rates over the 100 seeds. The type-I
error of the progress test is measured on null pairs: each checkpoint against an independently bootstrapped
copy of itself (the seed-permuted copy: mean progress difference exactly 0).

``PYTHONPATH=. python benchmarks/partial_credit_study.py [--runs 10000] [--cap 400]`` (or in N processes at
once: ``--shard I/N --json shard-I.json`` for each I, then ``--merge shard-*.json``: the same figures)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libs.evaluation.stats.anytime_tests import MAX_BET, MixtureSPRT, betting_log_wealth
from libs.evaluation.stats.sample_sizes import PairRates, PlanError, connor_pairs, mcnemar_power, smallest_n

PROFILES = Path("benchmarks/data/success_profiles.json")
POWER = 0.8
#: The null comparisons draw from streams (seed, NULL_STREAM, checkpoint), apart from the pairs' (seed, a, b).
NULL_STREAM = 1_000_000
#: The oracle's stakes searched for the growth-optimal one.
ORACLE_STAKES = np.linspace(0.0, 0.999, 1000)


def load_profiles(path: Path = PROFILES) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, success[checkpoint, seed] as bool, progress[checkpoint, seed] in [0, 1])."""
    data = json.loads(path.read_text())
    ids = [profile["id"] for profile in data["profiles"]]
    success = np.asarray([profile["success"] for profile in data["profiles"]], dtype=bool)
    progress = np.asarray([profile["progress"] for profile in data["profiles"]], dtype=np.float64)
    return ids, success, progress


def select_pairs(success: np.ndarray, min_gap: float) -> list[tuple[int, int]]:
    """Every unordered pair whose success rates differ by >= min_gap, the higher-rate checkpoint first."""
    rates = success.mean(axis=1)
    pairs = []
    for a in range(len(rates)):
        for b in range(a + 1, len(rates)):
            if abs(rates[a] - rates[b]) >= min_gap - 1e-9:
                pairs.append((a, b) if rates[a] > rates[b] else (b, a))
    return pairs


# --------------------------------------------------------------------------- the two sequential tests


def progress_stopping(differences: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The progress test on each row of ``differences`` (runs x cap, values in [-1, 1]): the wealth of
    ``anytime_tests.betting_log_wealth`` (all rows at once), E = (up + down) / 2, decided the first time
    E >= 1/alpha. Returns (episode of the decision, 0 when undecided; +1 when the first makes more
    progress, -1 less, 0 undecided)."""
    up, down = betting_log_wealth(differences)
    crossed = np.logaddexp(up, down) - math.log(2.0) >= math.log(1.0 / alpha)
    decided = crossed.any(axis=1)
    first = np.argmax(crossed, axis=1)
    rows = np.arange(len(first))
    stop = np.where(decided, first + 1, 0)
    verdict = np.where(decided, np.where(up[rows, first] >= down[rows, first], 1, -1), 0)
    return stop.astype(np.int64), verdict.astype(np.int64)


def binary_stopping(first: np.ndarray, second: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``paired_sequential``'s test on each row (budget = the streams' length): (episode of the decision,
    0 when undecided; +1 first better, -1 second better, 0 undecided)."""
    runs, cap = first.shape
    test = MixtureSPRT(0.5, alpha, cap)
    wins = np.cumsum(first & ~second, axis=1)
    losses = np.cumsum(~first & second, axis=1)
    crossed = test.log_e(wins, losses) >= test.log_threshold - 1e-12
    decided = crossed.any(axis=1)
    at = np.argmax(crossed, axis=1)
    rows = np.arange(runs)
    sign = np.where(2 * wins[rows, at] > wins[rows, at] + losses[rows, at], 1, -1)
    return np.where(decided, at + 1, 0), np.where(decided, sign, 0)


def growth_optimal_stake(differences: np.ndarray) -> float:
    """argmax_l mean(log(1 + l d)) over l in [0, 1) for differences of mean >= 0: the oracle's stake."""
    growth = np.log1p(ORACLE_STAKES[:, None] * differences[None, :]).mean(axis=1)
    return float(ORACLE_STAKES[int(growth.argmax())])


def oracle_stopping(differences: np.ndarray, stake: float, alpha: float) -> np.ndarray:
    """The oracle on each row: the episode its wealth prod(1 + stake d) first reaches 2/alpha (0: never)."""
    crossed = np.cumsum(np.log1p(stake * differences), axis=1) >= math.log(2.0 / alpha)
    return np.where(crossed.any(axis=1), np.argmax(crossed, axis=1) + 1, 0)


# --------------------------------------------------------------------------- one pair


def mcnemar_design(first: np.ndarray, second: np.ndarray, alpha: float, power: float = POWER) -> int | None:
    """Episodes per checkpoint of the fixed-n exact McNemar test at ``power`` from the pair's true
    discordance rates over the stored seeds (None: more than the planner allows)."""
    rates = PairRates(
        float(first.mean()),
        float(second.mean()),
        float((first & ~second).mean()),
        float((~first & second).mean()),
    )
    if rates.difference == 0:
        return None
    try:
        return smallest_n(lambda n: mcnemar_power(n, rates, alpha), power, connor_pairs(rates, power, alpha))
    except PlanError:
        return None


def simulate_pair(
    success: np.ndarray, progress: np.ndarray, pair: tuple[int, int], settings: dict, rng
) -> dict[str, Any]:
    """``settings['runs']`` bootstrapped comparisons of one pair, both sequential tests on each stream."""
    a, b = pair
    runs, cap, alpha = settings["runs"], settings["cap"], settings["alpha"]
    seeds = rng.integers(0, success.shape[1], size=(runs, cap))
    stop, verdict = progress_stopping(progress[a][seeds] - progress[b][seeds], alpha)
    binary_stop, binary_verdict = binary_stopping(success[a][seeds], success[b][seeds], alpha)
    row = summarise_pair(success, progress, pair, (stop, verdict, binary_stop, binary_verdict), settings)
    direction = 1.0 if progress[a].mean() >= progress[b].mean() else -1.0
    differences = direction * (progress[a] - progress[b])
    oracle = oracle_stopping(
        direction * (progress[a][seeds] - progress[b][seeds]), growth_optimal_stake(differences), alpha
    )
    row["oracle_mean_episodes"] = float(np.where(oracle > 0, oracle, cap).mean())
    row["oracle_mean_at_power"] = mean_at_power(oracle, cap)
    return row


def mean_at_power(stop: np.ndarray, cap: int) -> float | None:
    """Mean episodes of a test cut at the episode by which POWER of its runs decided (None: beyond cap)."""
    budget = int(np.quantile(np.where(stop > 0, stop, cap + 1), POWER, method="higher"))
    return float(np.minimum(np.where(stop > 0, stop, cap), budget).mean()) if budget <= cap else None


def summarise_pair(
    success: np.ndarray, progress: np.ndarray, pair: tuple[int, int], outcomes: tuple, settings: dict
) -> dict[str, Any]:
    a, b = pair
    stop, verdict, binary_stop, binary_verdict = outcomes
    cap, alpha = settings["cap"], settings["alpha"]
    decided = stop > 0
    episodes = np.where(decided, stop, cap)
    both = decided & (binary_stop > 0)
    progress_sign = int(np.sign(round(float(progress[a].mean() - progress[b].mean()), 9)))
    fixed = mcnemar_design(success[a], success[b], alpha)
    # The equal-power budget: the progress test cut at the episode by which 80% of runs decided (when
    # they do) has power 0.8 to decide; its mean episodes are E[min(T, that budget)].
    budget80 = int(np.quantile(np.where(decided, stop, cap + 1), POWER, method="higher"))
    mean80 = float(np.minimum(episodes, budget80).mean()) if budget80 <= cap else None
    return {
        "first": int(a),
        "second": int(b),
        "success_gap": float(success[a].mean() - success[b].mean()),
        "progress_gap": float(progress[a].mean() - progress[b].mean()),
        "progress_agrees_with_success": progress_sign > 0,
        "mcnemar_episodes": fixed,
        "progress_decided": float(decided.mean()),
        "progress_median_episodes": float(np.median(episodes)),
        "progress_mean_episodes": float(episodes.mean()),
        "progress_budget_at_power": budget80 if budget80 <= cap else None,
        "progress_mean_at_power": mean80,
        "progress_first_better": float((verdict > 0).mean()),
        "progress_second_better": float((verdict < 0).mean()),
        "binary_decided": float((binary_stop > 0).mean()),
        "binary_mean_episodes": float(np.where(binary_stop > 0, binary_stop, cap).mean()),
        "binary_first_better": float((binary_verdict > 0).mean()),
        "both_decided": float(both.mean()),
        "agree_when_both": float((verdict[both] == binary_verdict[both]).mean()) if both.any() else None,
    }


# --------------------------------------------------------------------------- null pairs


def null_type_one(
    success: np.ndarray, progress: np.ndarray, settings: dict, checkpoints: Sequence[int]
) -> list[dict]:
    """Each checkpoint against an independently bootstrapped copy of itself: mean progress difference 0,
    so the progress test's rejected fraction must be <= alpha (up to binomial noise)."""
    runs, cap, alpha = settings["runs"], settings["cap"], settings["alpha"]
    rows = []
    for index in checkpoints:
        rng = np.random.default_rng((settings["seed"], NULL_STREAM, index))
        first = rng.integers(0, progress.shape[1], size=(runs, cap))
        second = rng.integers(0, progress.shape[1], size=(runs, cap))
        stop, _ = progress_stopping(progress[index][first] - progress[index][second], alpha)
        rows.append({"checkpoint": index, "type_one_error": float((stop > 0).mean())})
    return rows


def upper_bound(rate: float, runs: int, z: float = 3.09) -> float:
    """Upper 99.9% normal bound of a rejected fraction whose true value is ``rate``."""
    return rate + z * math.sqrt(rate * (1 - rate) / runs)


def run_study(
    success: np.ndarray,
    progress: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    settings: dict,
    shard: tuple[int, int] = (0, 1),
) -> dict[str, Any]:
    """The whole study's figures (the core the test runs on a tiny setting), or shard (i, n) of them: every
    n-th pair and null from the i-th. Each pair and null draws from its own stream (seed, pair), so the
    shards of a run together give exactly the figures of the run in one piece."""
    index, count = shard
    rows = [
        simulate_pair(success, progress, pair, settings, np.random.default_rng((settings["seed"], *pair)))
        for pair in pairs[index::count]
    ]
    checkpoints = range(success.shape[0])[index::count]
    nulls = null_type_one(success, progress, settings, checkpoints) if settings.get("nulls", True) else []
    return {"settings": dict(settings), "pairs": rows, "nulls": nulls, "overall": overall(rows, nulls)}


def _pair_order(row: dict) -> tuple[int, int]:
    """select_pairs' order: by the lower index, then the higher (whichever checkpoint is first)."""
    return min(row["first"], row["second"]), max(row["first"], row["second"])


def merge_shards(shards: Sequence[dict]) -> dict[str, Any]:
    """The figures of a run from its shards (pairs in select_pairs' order, nulls by checkpoint)."""
    settings = shards[0]["settings"]
    rows = sorted((row for shard in shards for row in shard["pairs"]), key=_pair_order)
    nulls = sorted((row for shard in shards for row in shard["nulls"]), key=lambda r: r["checkpoint"])
    return {"settings": settings, "pairs": rows, "nulls": nulls, "overall": overall(rows, nulls)}


def overall(rows: list[dict], nulls: list[dict]) -> dict[str, Any]:
    planned = [row for row in rows if row["mcnemar_episodes"]]
    ratios = [row["progress_mean_episodes"] / row["mcnemar_episodes"] for row in planned]
    at_power = [row for row in planned if row["progress_mean_at_power"] is not None]
    ratios80 = [row["progress_mean_at_power"] / row["mcnemar_episodes"] for row in at_power]
    oracle = [
        row["oracle_mean_episodes"] / row["mcnemar_episodes"]
        for row in planned
        if "oracle_mean_episodes" in row
    ]
    oracle80 = [
        row["oracle_mean_at_power"] / row["mcnemar_episodes"]
        for row in planned
        if row.get("oracle_mean_at_power") is not None
    ]
    agree = [row["agree_when_both"] for row in rows if row["agree_when_both"] is not None]
    decided = sum(row["progress_first_better"] + row["progress_second_better"] for row in rows)
    return {
        "pairs": len(rows),
        "pairs_with_mcnemar_design": len(planned),
        "median_ratio_mean_episodes_to_mcnemar": float(np.median(ratios)) if ratios else None,
        "pooled_ratio_mean_episodes_to_mcnemar": (
            sum(row["progress_mean_episodes"] for row in planned)
            / sum(r["mcnemar_episodes"] for r in planned)
            if planned
            else None
        ),
        "pairs_with_progress_power_0.8_within_cap": len(at_power),
        "median_ratio_at_equal_power": float(np.median(ratios80)) if ratios80 else None,
        "pairs_at_least_50pct_fewer": sum(ratio <= 0.5 for ratio in ratios),
        "oracle_median_ratio_mean_episodes_to_mcnemar": float(np.median(oracle)) if oracle else None,
        "oracle_median_ratio_at_equal_power": float(np.median(oracle80)) if oracle80 else None,
        "oracle_pairs_at_least_50pct_fewer": sum(ratio <= 0.5 for ratio in oracle),
        "progress_decided": float(np.mean([row["progress_decided"] for row in rows])) if rows else None,
        "direction_agrees_with_success_ordering": (
            sum(row["progress_first_better"] for row in rows) / decided if decided else None
        ),
        "mean_agreement_with_binary_when_both_decide": float(np.mean(agree)) if agree else None,
        "pairs_progress_ordering_differs": sum(not row["progress_agrees_with_success"] for row in rows),
        "worst_null_type_one_error": max((row["type_one_error"] for row in nulls), default=None),
    }


# --------------------------------------------------------------------------- printing


def print_table(ids: list[str], figures: dict) -> None:
    cap = figures["settings"]["cap"]
    print(
        "| first vs second | success | progress | McNemar n (0.8) | progress: decided, median, mean "
        "| mean / McNemar | budget for 0.8, mean | progress says first better | binary: decided, "
        "first better | agree (both decided) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in figures["pairs"]:
        fixed = row["mcnemar_episodes"]
        ratio = f"{row['progress_mean_episodes'] / fixed:.2f}" if fixed else "-"
        budget = (
            f"{row['progress_budget_at_power']}, {row['progress_mean_at_power']:.0f}"
            if row["progress_mean_at_power"] is not None
            else f"> {cap}"
        )
        agree = f"{row['agree_when_both']:.3f}" if row["agree_when_both"] is not None else "-"
        print(
            f"| {ids[row['first']]} vs {ids[row['second']]} | {row['success_gap']:+.2f} | "
            f"{row['progress_gap']:+.3f} | {fixed or '-'} | {row['progress_decided']:.2f}, "
            f"{row['progress_median_episodes']:.0f}, {row['progress_mean_episodes']:.0f} | {ratio} | "
            f"{budget} | "
            f"{row['progress_first_better']:.3f} | {row['binary_decided']:.2f}, "
            f"{row['binary_first_better']:.3f} | {agree} |"
        )
    print()


#: The rows of the summary table: pairs by their McNemar n at power 0.8.
BINS = ((0, 50), (50, 100), (100, 200), (200, 400), (400, 10**9))


def print_bins(figures: dict) -> None:
    """The summary by McNemar n: decided share, mean episodes / McNemar n of the progress test, the binary
    test and the oracle (medians over the pairs; undecided runs counted at the cap)."""
    print(
        "| pairs by McNemar n (power 0.8) | pairs | progress test decided | its mean episodes / McNemar n "
        "(median, min–max) | binary test's (median) | oracle's (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    planned = [row for row in figures["pairs"] if row["mcnemar_episodes"]]
    for low, high in (*BINS, (0, 10**9)):
        rows = [row for row in planned if low <= row["mcnemar_episodes"] < high]
        if not rows:
            continue
        ratio = np.array([row["progress_mean_episodes"] / row["mcnemar_episodes"] for row in rows])
        binary = np.median([row["binary_mean_episodes"] / row["mcnemar_episodes"] for row in rows])
        oracle = np.median([row["oracle_mean_episodes"] / row["mcnemar_episodes"] for row in rows])
        name = "all" if (low, high) == (0, 10**9) else (f"≥ {low}" if high == 10**9 else f"{low}–{high - 1}")
        decided = np.mean([row["progress_decided"] for row in rows])
        print(
            f"| {name} | {len(rows)} | {decided:.0%} | {np.median(ratio):.2f} ({ratio.min():.2f}–"
            f"{ratio.max():.2f}) | {binary:.2f} | {oracle:.2f} |"
        )
    print()


def print_overall(figures: dict) -> None:
    settings, summary = figures["settings"], figures["overall"]
    print(
        f"## Overall ({settings['runs']} comparisons per pair, cap {settings['cap']}, "
        f"alpha {settings['alpha']})"
    )
    for key, value in summary.items():
        print(f"- {key}: {value:.3f}" if isinstance(value, float) else f"- {key}: {value}")
    if figures["nulls"]:
        bound = upper_bound(settings["alpha"], settings["runs"])
        print(f"- null type-I errors per checkpoint (99.9% noise bound at alpha: {bound:.4f}): ", end="")
        print(", ".join(f"{row['type_one_error']:.4f}" for row in figures["nulls"]))
    ratio = summary["median_ratio_mean_episodes_to_mcnemar"]
    if ratio is not None:
        met = "MET" if ratio <= 0.5 else "NOT met"
        print(
            f"\n>= 50% fewer episodes than fixed-n McNemar at power 0.8 (median over pairs): "
            f"{met} ({ratio:.2f})"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="simulated comparisons per pair")
    parser.add_argument("--cap", type=int, default=400, help="episodes per comparison at most")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--min-gap", type=float, default=0.05, help="smallest success-rate gap of a pair")
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--profiles", type=Path, default=PROFILES)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/data/partial_credit_study.json"))
    parser.add_argument(
        "--shard", help="I/N: run every N-th pair and null from the I-th only (run the N shards at once)"
    )
    parser.add_argument("--merge", type=Path, nargs="+", help="print and write the run of these shards' JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    ids, success, progress = load_profiles(arguments.profiles)
    pairs = select_pairs(success, arguments.min_gap)
    settings = {
        "runs": arguments.runs,
        "cap": arguments.cap,
        "alpha": arguments.alpha,
        "seed": arguments.seed,
        "max_bet": MAX_BET,
    }
    settings["min_gap"] = arguments.min_gap
    started = time.perf_counter()
    if arguments.merge:
        figures = merge_shards([json.loads(path.read_text()) for path in arguments.merge])
    else:
        index, _, count = (arguments.shard or "0/1").partition("/")
        figures = run_study(success, progress, pairs, settings, (int(index), int(count)))
    figures["ids"] = ids
    print_table(ids, figures)
    print_bins(figures)
    print_overall(figures)
    print(f"\n(study took {time.perf_counter() - started:.0f} s)")
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
