"""Simulation study of the sweep's sequential comparison (``--until-decided``): is it valid, and what does
it save?

1. **Type-I error under continuous monitoring.** For each null pair (two checkpoints with the same rate),
   ``--runs`` simulated comparisons (10,000 by default) each look after every single pair of episodes — the
   most looks a sweep can make — with the budget's calibrated threshold and with Ville's 1/alpha (no
   budget). The rejected fraction must stay <= alpha (up to binomial noise, shown as the upper 99.9% bound).
2. **Episodes against the fixed-n design of equal power.** For each alternative pair, the planner's budget
   (the smallest ``--max-episodes`` reaching the wanted power) is simulated ``--runs`` times; its measured
   power is matched by the smallest fixed n whose exact McNemar test has at least that power (computed
   exactly), and the mean episodes per checkpoint are compared.
3. **The limit.** The same comparison for an oracle that knows the true rates (Wald's SPRT of the true
   discordant win rate, same threshold rule; ``benchmarks/sequential_oracle.py``, exact): what any
   anytime-valid test of this question could save at that power.

``./pants run benchmarks:sequential_study -- --runs 10000 --png docs/sequential-study.png``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.sequential_oracle import oracle_design
from libs.evaluation.stats.anytime_tests import MixtureSPRT
from libs.evaluation.stats.sample_sizes import (
    PairRates,
    SimulationSettings,
    connor_pairs,
    mcnemar_power,
    simulate_paired,
    smallest_budget,
    smallest_n,
)

NULL_RATES = (0.1, 0.3, 0.5, 0.7, 0.9)
NULL_BUDGETS = (50, 200)
#: Ville's threshold needs no budget; its runs are cut at this many pairs for the simulation.
VILLE_HORIZON = 500
ALTERNATIVES = (
    (0.3, 0.1),
    (0.5, 0.2),
    (0.6, 0.3),
    (0.7, 0.4),
    (0.8, 0.5),
    (0.9, 0.6),
    (0.95, 0.7),
    (0.95, 0.5),
    (0.7, 0.5),
    (0.9, 0.7),
)
POWERS = (0.8, 0.9, 0.95)


def type_one_error(rate: float, budget: int | None, runs: int, alpha: float, seed: int) -> float:
    horizon = budget or VILLE_HORIZON
    rng = np.random.default_rng(seed)
    first = rng.random((runs, horizon)) < rate
    second = rng.random((runs, horizon)) < rate
    wins = np.cumsum(first & ~second, axis=1)
    losses = np.cumsum(~first & second, axis=1)
    test = MixtureSPRT(0.5, alpha, budget)
    return float((test.log_e(wins, losses) >= test.log_threshold - 1e-12).any(axis=1).mean())


def upper_bound(rate: float, runs: int, z: float = 3.09) -> float:
    """Upper 99.9% normal bound of a rejected fraction whose true value is ``rate``."""
    return rate + z * math.sqrt(rate * (1 - rate) / runs)


def null_study(runs: int, alpha: float) -> list[dict]:
    """Part 1: the type-I error of every null pair and budget, printed as a table as it goes."""
    print(f"## Type-I error, looking after every pair ({runs} comparisons per row, alpha {alpha})\n")
    print(f"| rate of both | budget | rejected | 99.9% bound if the true level were {alpha} |")
    print("|---|---|---|---|")
    nulls = []
    for rate in NULL_RATES:
        for budget in (*NULL_BUDGETS, None):
            error = type_one_error(rate, budget, runs, alpha, seed=int(rate * 1000) + (budget or 0))
            nulls.append({"rate": rate, "budget": budget, "type_one_error": error})
            shown = budget if budget else f"none (Ville, {VILLE_HORIZON} looked at)"
            print(f"| {rate:.0%} | {shown} | {error:.4f} | {upper_bound(alpha, runs):.4f} |")
    worst = max(row["type_one_error"] for row in nulls)
    print(f"\nworst type-I error: {worst:.4f} (alpha {alpha})\n")
    return nulls


def alternative_row(first: float, second: float, power: float, alpha: float, runs: int) -> dict:
    """Parts 2 and 3 for one alternative pair and wanted power: the planned budget's measured power and mean
    episodes, the fixed n of that power, and the same for the oracle."""
    rates = PairRates.independent(first, second)
    guess = max(4, int(connor_pairs(rates, power, alpha)))
    planned = smallest_budget(
        lambda budget: simulate_paired(rates, budget, SimulationSettings(alpha, 2000, 1)), power, guess
    )
    measured = simulate_paired(rates, planned.budget, SimulationSettings(alpha, runs, 2))
    fixed = smallest_n(lambda n: mcnemar_power(n, rates, alpha), measured.power, guess)
    oracle = oracle_design(rates, power, alpha, start=guess)
    oracle_fixed = smallest_n(lambda n: mcnemar_power(n, rates, alpha), oracle.power, guess)
    return {
        "first": first,
        "second": second,
        "wanted_power": power,
        "budget": planned.budget,
        "sequential_power": measured.power,
        "sequential_mean_episodes": measured.mean_episodes,
        "fixed_episodes": fixed,
        "saving": 1 - measured.mean_episodes / fixed,
        "oracle_budget": oracle.budget,
        "oracle_power": oracle.power,
        "oracle_mean_episodes": oracle.mean_episodes,
        "oracle_fixed_episodes": oracle_fixed,
        "oracle_saving": 1 - oracle.mean_episodes / oracle_fixed,
    }


def alternatives_study(powers: Sequence[float], alpha: float, runs: int) -> list[dict]:
    """Parts 2 and 3 over every alternative pair and power, printed as a table as it goes."""
    print(
        f"## Mean episodes per checkpoint vs the fixed-n exact McNemar design of equal power ({runs} runs)\n"
    )
    print(
        "| rates | wanted power | budget | sequential power | sequential mean "
        "| fixed n (same power) | saving | oracle: budget, mean, fixed n, saving |"
    )
    print("|---|---|---|---|---|---|---|---|")
    alternatives = []
    for first, second in ALTERNATIVES:
        for power in powers:
            row = alternative_row(first, second, power, alpha, runs)
            alternatives.append(row)
            print(
                f"| {first:.0%} vs {second:.0%} | {power:.2f} | {row['budget']} | "
                f"{row['sequential_power']:.3f} | {row['sequential_mean_episodes']:.1f} | "
                f"{row['fixed_episodes']} | {row['saving']:.0%} | {row['oracle_budget']}, "
                f"{row['oracle_mean_episodes']:.1f}, {row['oracle_fixed_episodes']}, "
                f"{row['oracle_saving']:.0%} |"
            )
    print()
    return alternatives


def print_savings(alternatives: list[dict], powers: Sequence[float]) -> None:
    for power in powers:
        rows = [row for row in alternatives if row["wanted_power"] == power]
        savings = [row["saving"] for row in rows]
        limits = [row["oracle_saving"] for row in rows]
        print(
            f"power {power:.2f}: saving min {min(savings):.0%}, median {float(np.median(savings)):.0%}, "
            f"max {max(savings):.0%}; the oracle's min {min(limits):.0%}, median "
            f"{float(np.median(limits)):.0%}, max {max(limits):.0%}"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="simulated comparisons per pair")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--powers", type=float, nargs="+", default=list(POWERS))
    parser.add_argument("--png", type=Path, default=None, help="write the figure here")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    alpha, runs = arguments.alpha, arguments.runs
    started = time.perf_counter()
    nulls = null_study(runs, alpha)
    alternatives = alternatives_study(arguments.powers, alpha, runs)
    print_savings(alternatives, arguments.powers)
    print(f"\n(study took {time.perf_counter() - started:.0f} s)")

    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(
            json.dumps({"alpha": alpha, "runs": runs, "nulls": nulls, "alternatives": alternatives}, indent=2)
        )
    if arguments.png:
        plot(nulls, alternatives, alpha, runs, arguments.png)
        print(f"figure: {arguments.png}")
    return 0


def plot(nulls: list[dict], alternatives: list[dict], alpha: float, runs: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 1.7]})
    budgets = [*NULL_BUDGETS, None]
    width = 0.8 / len(budgets)
    for index, budget in enumerate(budgets):
        rows = [row for row in nulls if row["budget"] == budget]
        x = np.arange(len(rows)) + (index - (len(budgets) - 1) / 2) * width
        label = f"budget {budget}" if budget else "no budget (Ville)"
        left.bar(x, [row["type_one_error"] for row in rows], width, label=label)
    left.axhline(alpha, color="black", linestyle="--", linewidth=1, label=f"alpha = {alpha}")
    left.axhline(
        upper_bound(alpha, runs), color="gray", linestyle=":", linewidth=1, label="99.9% noise bound"
    )
    left.set_xticks(np.arange(len(NULL_RATES)), [f"{rate:.0%}" for rate in NULL_RATES])
    left.set_xlabel("success rate of both checkpoints (null)")
    left.set_ylabel(f"type-I error ({runs} runs, a look after every pair)")
    left.set_title("Valid under continuous monitoring")
    left.legend(fontsize=8)

    powers = sorted({row["wanted_power"] for row in alternatives})
    labels = [f"{a:.0%}\nvs {b:.0%}" for a, b in ALTERNATIVES]
    x = np.arange(len(ALTERNATIVES))
    width = 0.8 / (2 * len(powers))
    for index, power in enumerate(powers):
        rows = [row for row in alternatives if row["wanted_power"] == power]
        offset = (2 * index - len(powers) + 0.5) * width
        right.bar(
            x + offset,
            [row["fixed_episodes"] for row in rows],
            width,
            color=f"C{index}",
            alpha=0.35,
            label=f"fixed n, power {power:.2f}",
        )
        right.bar(
            x + offset + width,
            [row["sequential_mean_episodes"] for row in rows],
            width,
            color=f"C{index}",
            label=f"sequential mean, power {power:.2f}",
        )
    right.set_xticks(x, labels, fontsize=8)
    right.set_ylabel("episodes per checkpoint")
    right.set_title("Episodes at equal power: fixed-n exact McNemar vs sequential")
    right.legend(fontsize=7, ncol=len(powers))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
