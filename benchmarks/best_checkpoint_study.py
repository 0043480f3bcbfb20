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

**The oracle's ceiling.** On the same bootstrapped seeds an oracle is told which drawn checkpoint b is best
and each pair's exact distribution of per-seed differences D = X_b − X_k (over the 100 stored seeds). For each
other checkpoint k it stakes the growth-optimal fixed fraction on "p_b − p_k > −ε" (the easiest claim that
lets it name b) from the first seed, at level δ itself (no share of δ over K − 1 pairs: it knows which pairs
matter), and stops playing k the moment that wealth reaches 1/δ (or at the budget); b plays as long as the
longest. No test that must learn which checkpoint is best and how much to stake can need fewer episodes on
average than this by much (the growth-optimal stake is the fastest a bettor's wealth can grow), so its
"fewer by" is the most any anytime-valid selection can save on these profiles.

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
#: The oracle's stakes searched for the growth-optimal one.
ORACLE_STAKES = np.linspace(0.0, 0.999, 1000)


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
            for record in (record for record in store.records() if record.is_control):  # not the arms
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


def oracle_stakes(successes: np.ndarray, epsilon: float) -> np.ndarray:
    """stakes[b, k]: the growth-optimal fraction on "p_b − p_k > −ε" for the per-seed difference of two
    profiles, the bet scaled so the wealth stays positive: 1 + stake (D + ε) / (1 + ε)."""
    count = successes.shape[0]
    stakes = np.zeros((count, count))
    values = successes.astype(np.float64)
    for b in range(count):
        shifted = (values[b][None, :] - values + epsilon) / (1.0 + epsilon)  # [k, seed]
        growth = np.log1p(ORACLE_STAKES[:, None, None] * shifted[None]).mean(axis=2)  # [stake, k]
        stakes[b] = ORACLE_STAKES[growth.argmax(axis=0)]
    return stakes


#: The oracle's variants: (name, level of each pair test given δ and K, whether it stops playing a checkpoint
#: once shown within ε of the best). The first is the oracle; the others take its advantages away one by one.
ORACLES = (
    ("oracle", lambda delta, k: delta, True),
    ("oracle at δ/(K − 1)", lambda delta, k: delta / (k - 1), True),
    ("oracle at δ/(K − 1), no pausing", lambda delta, k: delta / (k - 1), False),
)


def oracle_episodes(
    outcomes: np.ndarray,
    drawn: np.ndarray,
    rates: np.ndarray,
    stakes: tuple[np.ndarray, np.ndarray],
    epsilon: float,
) -> dict[str, np.ndarray]:
    """Each oracle's episodes on each selection's seeds ``outcomes[run, seed, k]`` (module docstring);
    ``stakes`` are ``oracle_stakes`` at ε and at 0. Without pausing a checkpoint plays until the selection
    stops (every other one shown within ε of the best, or shown worse at 0: then it leaves at that seed)."""
    count, budget, k = outcomes.shape
    rows = np.arange(count)
    best = rates[drawn].argmax(axis=1)
    values = outcomes.astype(np.float64)
    differences = values[rows, :, best][:, :, None] - values  # [run, seed, k]
    figures = {}
    for name, level_of, pausing in ORACLES:
        level = level_of(DELTA, k)
        within = _oracle_crossing(differences, stakes[0][drawn[rows, best][:, None], drawn], epsilon, level)
        within[rows, best] = 0
        if pausing:
            figures[name] = within.sum(axis=1) + within.max(axis=1)
            continue
        worse = _oracle_crossing(differences, stakes[1][drawn[rows, best][:, None], drawn], 0.0, level)
        stop = np.where(worse < within, 0, within).max(axis=1)
        seeds = np.minimum(worse, stop[:, None])
        seeds[rows, best] = stop
        figures[name] = seeds.sum(axis=1)
    return figures


def _oracle_crossing(differences: np.ndarray, stake: np.ndarray, epsilon: float, level: float) -> np.ndarray:
    """The first seed the wealth prod(1 + stake (D + ε) / (1 + ε)) reaches 1/level (the budget if never)."""
    wealth = np.cumsum(np.log1p(stake[:, None, :] * (differences + epsilon) / (1.0 + epsilon)), axis=1)
    crossed = wealth >= np.log(1.0 / level)
    return np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1, differences.shape[1])


def simulate(successes: np.ndarray, k: int, epsilon: float, budget: int, runs: int, rng) -> dict[str, Any]:
    """``runs`` selections of the best of ``k`` drawn checkpoints, the oracle on the same seeds, and the
    fixed sweep on 100 seeds."""
    rates = successes.mean(axis=1)
    stakes = (oracle_stakes(successes, epsilon), oracle_stakes(successes, 0.0))
    error, fixed_error, episodes, verdicts, budget_errors = [], [], [], [], []
    oracle: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in ORACLES}
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
        for name, spent_by_oracle in oracle_episodes(
            outcomes[:, :budget], drawn, rates, stakes, epsilon
        ).items():
            oracle[name].append(spent_by_oracle)
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
        "oracle_mean_episodes": float(np.concatenate(oracle["oracle"]).mean()),
        "oracle_fewer_by": float(k * FIXED_SEEDS / np.concatenate(oracle["oracle"]).mean()),
        "oracles_fewer_by": {
            name: float(k * FIXED_SEEDS / np.concatenate(spent_by).mean())
            for name, spent_by in oracle.items()
        },
    }


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    print(
        "| K | ε | budget | error (δ = 0.05) | of which at budget end | fixed sweep's error | decided | "
        "mean episodes | fixed K × 100 | fewer by | oracle's episodes | oracle fewer by |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['k']} | {row['epsilon']:.2f} | {row['budget']} | {row['error_rate']:.4f} | "
            f"{row['error_rate_at_budget']:.4f} | {row['fixed_sweep_error_rate']:.4f} | "
            f"{row['decided_share']:.0%} | {row['mean_episodes']:.0f} | {row['fixed_episodes']} | "
            f"{row['fewer_by']:.2f}× | {row['oracle_mean_episodes']:.0f} | {row['oracle_fewer_by']:.2f}× |"
        )


def print_oracles(rows: Sequence[dict[str, Any]]) -> None:
    """What each of the oracle's advantages is worth, against the selection itself."""
    names = [name for name, _, _ in ORACLES]
    print("\n| K | ε | budget | --select-best | " + " | ".join(names) + " |")
    print("|---|---|---|---|" + "---|" * len(names))
    for row in rows:
        cells = " | ".join(f"{row['oracles_fewer_by'][name]:.2f}×" for name in names)
        print(f"| {row['k']} | {row['epsilon']:.2f} | {row['budget']} | {row['fewer_by']:.2f}× | {cells} |")


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


def training_runs(sweeps: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The sweeps grouped by training run: a sweep named "<run>-<digits>" (one more checkpoint of <run> swept
    on its own, e.g. pi0-state-7k-s2000-3500) joins <run>'s checkpoints when it adds new ones."""
    runs = {name: dict(checkpoints) for name, checkpoints in sweeps.items()}
    for name, checkpoints in sweeps.items():
        run, _, suffix = name.rpartition("-")
        if suffix.isdigit() and run in runs and not set(checkpoints) & set(runs[run]):
            runs[run].update(checkpoints)
            del runs[name]
    return runs


def real_comparison(root: Path, epsilon: float) -> list[dict[str, Any]]:
    """Each stored training run of several checkpoints, selected on its own seeds in seed order (budget 100):
    the outcomes are deterministic per seed, so this is what a --select-best sweep of it would have seen."""
    from libs.evaluation.stats.best_of_k import select_best

    rows = []
    for sweep, checkpoints in training_runs(read_sweeps(root)).items():
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
    spent, fixed = sum(row["episodes"] for row in rows), sum(row["fixed_episodes"] for row in rows)
    same = sum(row["selected"] == row["fixed_best"] for row in rows)
    print(
        f"| all {len(rows)} runs | | {same} of {len(rows)} name the fixed sweep's best | | {spent} | {fixed} "
        f"({fixed / spent:.2f}× the episodes) |"
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
    print_oracles(rows)
    print(f"({time.perf_counter() - started:.0f} s)")
    figures: dict[str, Any] = {"settings": rows, "profiles": ids}
    if arguments.real:
        figures["real"] = {f"{e:g}": real_comparison(arguments.real, e) for e in EPSILONS}
        for epsilon in EPSILONS:
            print_real(figures["real"][f"{epsilon:g}"], epsilon)
    if arguments.json:  # before the plot: the figures are kept even where matplotlib is missing
        arguments.json.write_text(json.dumps(figures, indent=1) + "\n")
    if arguments.png:
        plot(rows, arguments.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
