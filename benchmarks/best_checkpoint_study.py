"""Simulation study of best-checkpoint selection (``sweep --select-best``) on success profiles of real sweeps.

The profiles are the per-seed outcomes of the sweeps stored under /work/exp/eval (every checkpoint on seeds
0-99), extracted once into ``benchmarks/data/success_profiles.json``:

    ./pants run benchmarks:best_checkpoint_study -- --extract /work/exp/eval

Each simulated selection draws K distinct checkpoints from the pool and resamples seeds (a bootstrap over the
100 seed indices: every checkpoint plays the same drawn seed, so the pairing of real sweeps is kept); the
"true" success rate of a checkpoint is its rate over the 100 stored seeds. The selection looks after every
seed (``libs.evaluation.stats.best_of_k.walk_selections``, the walk the sweep uses), with a budget of
``--budget`` seeds per checkpoint. Reported per setting (K, ε, δ = 0.05): the selection error rate (the one
named more than ε below the best), split by how the selection ended, the fixed sweep's (the best of every
checkpoint on 100 seeds), and the mean episodes against the fixed sweep's K × 100.

``./pants run benchmarks:best_checkpoint_study -- --runs 10000 --png docs/best-checkpoint-study.png``
(the real-run comparison: ``--real /work/exp/eval``)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libs.evaluation.stats.best_of_k import walk_selections

#: Relative to the repository root (where ``./pants run`` and the documented commands run).
PROFILES = Path("benchmarks/data/success_profiles.json")
KS = (5, 10, 20)
EPSILONS = (0.05, 0.10)
DELTA = 0.05
#: Seeds of the stored sweeps every profile has (the fixed sweep the selection is compared with).
FIXED_SEEDS = 100
#: Selections simulated together (memory: chunk × budget × K outcomes).
CHUNK = 1000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000, help="simulated selections per setting")
    parser.add_argument("--budget", type=int, nargs="+", default=[100, 300], help="seeds per checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", type=Path, help="write the plot here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--extract", type=Path, help="write --profiles from the sweeps under this folder")
    parser.add_argument(
        "--profiles", type=Path, default=PROFILES, help=f"success profiles (default {PROFILES})"
    )
    parser.add_argument("--real", type=Path, help="also select on each stored sweep under this folder")
    return parser


# --------------------------------------------------------------------------- profiles


def read_sweeps(root: Path) -> dict[str, dict[str, dict[int, tuple[bool, float | None]]]]:
    """sweep folder -> checkpoint -> seed -> (success, progress), from every ``*/episodes.sqlite``."""
    from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore

    sweeps = {}
    for path in sorted(root.glob(f"*/{STORE_FILE_NAME}")):
        with ResultsStore(path) as store:
            by_checkpoint: dict[str, dict[int, tuple[bool, float | None]]] = {}
            for record in store.records():
                by_checkpoint.setdefault(record.checkpoint_id, {})[record.seed] = (
                    record.success,
                    record.progress,
                )
        sweeps[path.parent.name] = by_checkpoint
    return sweeps


def extract_profiles(root: Path, out: Path) -> None:
    """Every checkpoint stored on exactly seeds 0-99, once (a checkpoint swept twice has equal outcomes)."""
    profiles, seen = [], set()
    for sweep, checkpoints in read_sweeps(root).items():
        for checkpoint, episodes in sorted(checkpoints.items()):
            if sorted(episodes) != list(range(FIXED_SEEDS)):
                continue
            success = [int(episodes[seed][0]) for seed in range(FIXED_SEEDS)]
            progress = [episodes[seed][1] for seed in range(FIXED_SEEDS)]
            key = (tuple(success), tuple(progress))
            if key in seen:
                continue
            seen.add(key)
            profiles.append({"id": f"{sweep}/{checkpoint}", "success": success, "progress": progress})
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"source": str(root), "seeds": list(range(FIXED_SEEDS)), "profiles": profiles})
    out.write_text(text + "\n")
    print(f"{len(profiles)} checkpoint profiles on seeds 0-{FIXED_SEEDS - 1} -> {out}")


def load_profiles(path: Path = PROFILES) -> tuple[list[str], np.ndarray]:
    """(ids, successes[checkpoint, seed])."""
    data = json.loads(path.read_text())
    ids = [profile["id"] for profile in data["profiles"]]
    return ids, np.asarray([profile["success"] for profile in data["profiles"]], dtype=bool)


# --------------------------------------------------------------------------- simulation


def simulate(successes: np.ndarray, k: int, epsilon: float, budget: int, runs: int, rng) -> dict[str, Any]:
    """``runs`` selections of the best of ``k`` drawn checkpoints, and the fixed sweep on 100 seeds."""
    rates = successes.mean(axis=1)
    error, fixed_error, episodes, verdicts, budget_errors = [], [], [], [], []
    for start in range(0, runs, CHUNK):
        count = min(CHUNK, runs - start)
        drawn = np.argsort(rng.random((count, len(rates))), axis=1)[:, :k]  # k distinct checkpoints each
        seeds = rng.integers(0, successes.shape[1], size=(count, max(budget, FIXED_SEEDS)))
        outcomes = successes[drawn[:, None, :], seeds[:, :, None]]  # [run, seed, k]
        walk = walk_selections(outcomes[:, :budget], epsilon, DELTA)
        true = rates[drawn]
        best = true.max(axis=1)
        rows = np.arange(count)
        named_bad = true[rows, walk.chosen] < best - epsilon - 1e-12
        fixed_pick = outcomes[:, :FIXED_SEEDS].sum(axis=1).argmax(axis=1)
        error.append(named_bad)
        budget_errors.append(named_bad & (walk.verdict == 3))
        fixed_error.append(true[rows, fixed_pick] < best - epsilon - 1e-12)
        episodes.append(walk.episodes)
        verdicts.append(walk.verdict)
    verdict = np.concatenate(verdicts)
    spent = np.concatenate(episodes)
    return {
        "k": k,
        "epsilon": epsilon,
        "delta": DELTA,
        "budget": budget,
        "runs": runs,
        "error_rate": float(np.concatenate(error).mean()),
        "error_rate_at_budget": float(np.concatenate(budget_errors).mean()),
        "fixed_sweep_error_rate": float(np.concatenate(fixed_error).mean()),
        "decided_share": float(np.isin(verdict, (1, 2)).mean()),
        "budget_share": float((verdict == 3).mean()),
        "mean_episodes": float(spent.mean()),
        "fixed_episodes": k * FIXED_SEEDS,
        "fewer_by": float(k * FIXED_SEEDS / spent.mean()),
    }


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    print(
        "| K | ε | budget | error (δ = 0.05) | of which at budget end | fixed sweep's error | decided | "
        "mean episodes | fixed K × 100 | fewer by |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['k']} | {row['epsilon']:.2f} | {row['budget']} | {row['error_rate']:.4f} | "
            f"{row['error_rate_at_budget']:.4f} | {row['fixed_sweep_error_rate']:.4f} | "
            f"{row['decided_share']:.0%} | {row['mean_episodes']:.0f} | {row['fixed_episodes']} | "
            f"{row['fewer_by']:.2f}× |"
        )


def plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(15, 4.5))
    labels = [f"K={r['k']}\nε={r['epsilon']:.2f}\nB={r['budget']}" for r in rows]
    x = np.arange(len(rows))
    left.bar(x - 0.2, [r["error_rate"] for r in rows], 0.4, label="--select-best")
    left.bar(x + 0.2, [r["fixed_sweep_error_rate"] for r in rows], 0.4, label="fixed sweep, 100 seeds")
    left.axhline(DELTA, color="black", linestyle="--", label="δ = 0.05")
    left.set_xticks(x, labels, fontsize=7)
    left.set_ylabel("named checkpoint more than ε below the best")
    left.legend(fontsize=8)
    right.bar(x - 0.2, [r["mean_episodes"] for r in rows], 0.4, label="--select-best (mean)")
    right.bar(x + 0.2, [r["fixed_episodes"] for r in rows], 0.4, label="fixed sweep: K × 100")
    right.set_xticks(x, labels, fontsize=7)
    right.set_ylabel("episodes")
    right.legend(fontsize=8)
    figure.suptitle("Best-of-K selection on bootstrapped real sweeps (10,000 selections per setting)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


# --------------------------------------------------------------------------- the real sweeps


def real_comparison(root: Path, epsilon: float) -> list[dict[str, Any]]:
    """Each stored sweep of several checkpoints, selected on its own seeds in seed order (budget 100)."""
    from libs.evaluation.stats.best_of_k import select_best

    rows = []
    for sweep, checkpoints in read_sweeps(root).items():
        ids = [
            c for c, episodes in sorted(checkpoints.items()) if sorted(episodes) == list(range(FIXED_SEEDS))
        ]
        if len(ids) < 2:
            continue
        outcomes = {c: [checkpoints[c][seed][0] for seed in range(FIXED_SEEDS)] for c in ids}
        selection = select_best(ids, outcomes, epsilon, DELTA, FIXED_SEEDS)
        rates = {c: sum(outcomes[c]) / FIXED_SEEDS for c in ids}
        fixed_best = max(ids, key=lambda c: rates[c])
        episodes = sum(selection.seeds_walked.values())
        rows.append(
            {
                "sweep": sweep,
                "checkpoints": {c: rates[c] for c in ids},
                "selected": selection.chosen,
                "verdict": selection.verdict,
                "episodes": episodes,
                "fixed_best": fixed_best,
                "fixed_episodes": len(ids) * FIXED_SEEDS,
            }
        )
    return rows


def print_real(rows: Sequence[dict[str, Any]], epsilon: float) -> None:
    print(f"\nReal sweeps (ε = {epsilon:g}, δ = {DELTA:g}, budget 100 = the stored seeds, seed order):")
    print("| sweep | success rates | selected | how | episodes | fixed sweep's best (K × 100) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        rates = ", ".join(f"{c} {rate:.2f}" for c, rate in row["checkpoints"].items())
        print(
            f"| {row['sweep']} | {rates} | {row['selected']} | {row['verdict']} | {row['episodes']} | "
            f"{row['fixed_best']} ({row['fixed_episodes']}) |"
        )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    if arguments.extract:
        extract_profiles(arguments.extract, arguments.profiles)
        return 0
    ids, successes = load_profiles(arguments.profiles)
    print(f"{len(ids)} profiles, success rates {sorted(np.round(successes.mean(axis=1), 2).tolist())}")
    rng = np.random.default_rng(arguments.seed)
    rows, started = [], time.perf_counter()
    for budget in arguments.budget:
        for k in KS:
            for epsilon in EPSILONS:
                rows.append(simulate(successes, min(k, len(ids)), epsilon, budget, arguments.runs, rng))
    print_table(rows)
    print(f"({time.perf_counter() - started:.0f} s)")
    figures: dict[str, Any] = {"settings": rows, "profiles": ids}
    if arguments.real:
        figures["real"] = {f"{e:g}": real_comparison(arguments.real, e) for e in EPSILONS}
        for epsilon in EPSILONS:
            print_real(figures["real"][f"{epsilon:g}"], epsilon)
    if arguments.png:
        plot(rows, arguments.png)
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
