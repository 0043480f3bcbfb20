"""SO-101 learning curves: success (95% Wilson) against the number of scripted demonstrations.

    ./pants run benchmarks:learning_curves -- --out results/learning_curves
    ./pants run benchmarks:learning_curves -- --policies act-state --demos 50,200
    ./pants run benchmarks:learning_curves -- --out results/learning_curves --dry-run   # print the commands
    ./pants run benchmarks:learning_curves -- --address HEAD:6379 --workers 16   # train the cells on Ray
    ./pants run benchmarks:learning_curves -- --policies smolvla-state,pi0-state   # the VLAs, tiny backbones

For each policy recipe (``RECIPES``: ACT-state, Diffusion-state, JAX-state, ACT-vision, JAX-vision, and
SmolVLA-state and Pi0-state: object state and two 72x96 cameras, every weight of a tiny offline backbone
trained; with ``--train-seeds`` each recipe once per training seed, as ``<policy>-seed<S>``) and each
demonstration count N, one *cell*: the first N episodes of a pool of scripted demonstrations (recorded once
per observation kind, on seeds the evaluation never uses) → train with the recipe's command → evaluate the
last checkpoint on the same ``--eval-seeds`` seeds (0..K-1) with the lab's sweep → success, Wilson interval,
outcome counts, and the training wall time. Every step is the user's own ``./pants run`` command (the torch
and JAX stacks live in different resolves), printed before it runs. A recipe on a tiny backbone
first builds it once, in ``OUT/backbones/<policy>`` (``backends/torch_lerobot:tiny-backbone``), and every
cell of that policy trains from it (``--tiny-backbone``).

With ``--address`` (a Ray cluster, the sweep's token-auth one, or ``local`` for this machine's cores) the
unfinished cells' training runs go to Ray at once, one task each with the recipe's threads (and a GPU with
``--gpu`` where a node has one), through the training runner of each stack's resolve
(``services/training:train-runs-<backend>``); each finished run is stamped as its train stage would be, so
the cells' evaluations then follow as before, on the same cluster. Without it, one cell after another.

Resumable: a finished cell is stored in ``OUT/cells/<policy>-<N>.json`` and never redone; a step whose
output exists is skipped, and an interrupted training run continues from its last checkpoint. After every
cell ``OUT/learning_curves.md`` and ``OUT/learning_curves.png`` are rewritten from all finished cells.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from libs.datasets.lerobot_v3 import DatasetError, LeRobotV3Dataset
from libs.evaluation.stats.metrics import wilson_interval
from services.quickstart.quickstart import (
    QuickstartError,
    Stage,
    find_buildroot,
    move_aside,
    record_stage,
    run_stages,
)
from services.training.runs import TRAINERS, TrainingRun, read_record, trainer_of_target, write_runs_file

#: Seed of the first pooled demonstration; evaluation seeds are 0..K-1, far below it.
DEMO_FIRST_SEED = 200_000
DEMO_COUNTS = (25, 50, 100, 200)
CELLS_DIR = "cells"


@dataclass(frozen=True)
class DemoPool:
    """How one kind of demonstration pool is recorded (``libs/datasets:record`` arguments)."""

    name: str
    record_args: tuple[str, ...]


POOLS: dict[str, DemoPool] = {
    # Privileged object state, no cameras; DART-style noise on the executed actions (labels stay clean)
    # so the demonstrations show corrections.
    # 2.0° (not 1.0°): ACT-state 95/100 against 85/100 from 200 demos (README "State-based ACT").
    "state": DemoPool("state", ("--environment-state", "--no-cameras", "--noise", "2.0")),
    # The vision ACT recipe was measured on 2.0° demos too (README "Vision ACT").
    "vision": DemoPool("vision", ("--image-size", "96x128", "--noise", "2.0")),
    # Object state and two 72x96 cameras: what SmolVLA and Pi0 were measured on (docs/vla-and-vision.md
    # "Item 1a"); they read the state through LeRobot's own code and the cameras through their backbone.
    "state-cameras": DemoPool(
        "state-cameras", ("--environment-state", "--image-size", "72x96", "--noise", "2.0")
    ),
}


@dataclass(frozen=True)
class Recipe:
    """How one policy is trained: the Pants target, its arguments (``{data}``, ``{out}`` filled in), the
    sweep target that evaluates it, and the demonstration pool it learns from."""

    name: str
    pool: str
    train_target: str
    train_args: tuple[str, ...]
    sweep_target: str
    policy_prefix: str
    #: checkpoint folder name of the last step (the train command's own layout)
    last_checkpoint: str
    #: the policy whose tiny random backbone (``OUT/backbones/<policy>``) the recipe trains on, built once
    #: by a stage of its own before any cell (``--tiny-backbone``); None: the recipe needs none
    tiny_backbone: str | None = None

    @property
    def train_resumes(self) -> bool:
        """Whether the train command continues an interrupted run in its --out: a property of the trainer,
        not of the recipe (both resume from their last checkpoint with the same batches)."""
        return self.train_target in RESUMING_TRAINERS


#: each trainer that continues an interrupted run, and the flags that make it (the JAX trainer by itself)
RESUMING_TRAINERS: dict[str, tuple[str, ...]] = {
    "backends/jax_openpi:train": (),
    "backends/torch_lerobot:train": ("--resume",),
}


RECIPES: dict[str, Recipe] = {
    "act-state": Recipe(
        "act-state",
        "state",
        "backends/torch_lerobot:train",
        # The README's recipe: 4,000 steps of batch 32, cosine decay (the state preset's auto schedule).
        ("--policy", "act", "--preset", "state", "--steps", "4000", "--batch-size", "32", "--threads", "1"),
        "services/eval:sweep-torch_lerobot",
        "torch_lerobot",
        "004000",
    ),
    "diffusion-state": Recipe(
        "diffusion-state",
        "state",
        "backends/torch_lerobot:train",
        # The state preset (clean-chunk prediction, U-Net 32/64/128): 6,000 steps of batch 64, ~9 min a core.
        (
            *("--policy", "diffusion", "--preset", "state"),
            *("--steps", "6000", "--batch-size", "64", "--threads", "1"),
        ),
        "services/eval:sweep-torch_lerobot",
        "torch_lerobot",
        "006000",
    ),
    "jax-state": Recipe(
        "jax-state",
        "state",
        "backends/jax_openpi:train",
        # The README's recipe: 8,000 steps, the learning rate decaying over exactly those steps.
        ("--config", "so101_state", "--steps", "8000", "--decay-steps", "8000", "--compute-norm-stats"),
        "services/eval:sweep-jax_openpi",
        "jax_openpi",
        "008000",
    ),
    "act-vision": Recipe(
        "act-vision",
        "vision",
        "backends/torch_lerobot:train",
        # README "Vision ACT": 81/100 from 200 demos with this (cpu preset: GroupNorm encoder, width 16).
        ("--policy", "act", "--preset", "cpu", "--steps", "15000", "--batch-size", "16", "--threads", "1"),
        "services/eval:sweep-torch_lerobot",
        "torch_lerobot",
        "015000",
    ),
    "jax-vision": Recipe(
        "jax-vision",
        "vision",
        "backends/jax_openpi:train",
        # README "Vision JAX policy": 18/50 from 200 demos with this (33 min of one core).
        ("--config", "so101_cpu", "--steps", "8000", "--decay-steps", "8000", "--compute-norm-stats"),
        "services/eval:sweep-jax_openpi",
        "jax_openpi",
        "008000",
    ),
    "smolvla-state": Recipe(
        "smolvla-state",
        "state-cameras",
        "backends/torch_lerobot:train",
        # docs/vla-and-vision.md "Item 1a": 89 and 90/100 from 200 demos (two training seeds), every weight of
        # a 433K-parameter tiny backbone trained, 17 min of one core.
        (
            *("--policy", "smolvla", "--preset", "state", "--steps", "10000", "--save-freq", "2500"),
            *("--batch-size", "32", "--threads", "1"),
        ),
        "services/eval:sweep-torch_lerobot",
        "torch_lerobot",
        "010000",
        tiny_backbone="smolvla",
    ),
    "pi0-state": Recipe(
        "pi0-state",
        "state-cameras",
        "backends/torch_lerobot:train",
        # docs/vla-and-vision.md "Item 1a": 53 and 44/100 from 200 demos (two training seeds), a tiny
        # 183K-parameter backbone, 16 min of one core.
        (
            *("--policy", "pi0", "--preset", "state", "--steps", "7000", "--save-freq", "3500"),
            *("--batch-size", "32", "--threads", "1"),
        ),
        "services/eval:sweep-torch_lerobot",
        "torch_lerobot",
        "007000",
        tiny_backbone="pi0",
    ),
}

#: the file a built tiny backbone dir holds (backends/torch_lerobot/tiny_backbones.py TINY_BACKBONE_FILE; not
#: imported: this driver runs outside the torch resolve)
TINY_BACKBONE_FILE = "tiny_backbone.json"


def _pool_dir(out: Path, pool: str) -> Path:
    return out / "data" / f"{pool}-pool"


def _subset_dir(out: Path, pool: str, demos: int) -> Path:
    return out / "data" / f"{pool}-{demos}"


def _run_dir(out: Path, recipe: str, demos: int) -> Path:
    return out / "runs" / f"{recipe}-{demos}"


def _eval_dir(out: Path, recipe: str, demos: int) -> Path:
    return out / "eval" / f"{recipe}-{demos}"


def _cell_path(out: Path, recipe: str, demos: int) -> Path:
    return out / CELLS_DIR / f"{recipe}-{demos}.json"


def backbone_dir(out: Path, policy: str) -> Path:
    return out / "backbones" / policy


def backbone_stage(out: Path, policy: str) -> Stage:
    """Builds the tiny random ``policy`` backbone once, before any cell trains on it: every cell's run then
    starts from the same weights, and no two runs build it at once."""
    directory = backbone_dir(out, policy)
    return Stage(
        f"backbone-{policy}",
        f"build the tiny offline {policy} backbone",
        "backends/torch_lerobot:tiny-backbone",
        "backends.torch_lerobot.tiny_backbones",
        ("--policy", policy, "--out", str(directory)),
        directory / TINY_BACKBONE_FILE,
        output=directory,
        # the builder refuses a folder that is not empty: an interrupted build is moved aside
        resumes=False,
    )


def pool_stage(out: Path, pool: DemoPool, episodes: int) -> Stage:
    stage = record_stage(
        f"record-{pool.name}",
        _pool_dir(out, pool.name),
        episodes,
        pool.record_args,
        f"record a pool of {episodes} scripted {pool.name} demonstrations",
        first_seed=DEMO_FIRST_SEED,
        fresh=True,
    )
    # A larger pool serves a smaller grid (its first episodes are the smaller pool's), so the count is not
    # part of what the pool was made with; a pool too small is set aside by set_aside_short_pool.
    position = stage.argv.index("--episodes")
    return replace(stage, fingerprint=stage.argv[:position] + stage.argv[position + 2 :])


def set_aside_short_pool(out: Path, pool: DemoPool, episodes: int) -> Path | None:
    """Moves aside a pool recorded for a smaller grid, so that its record stage records ``episodes`` anew.

    The recorder plays seeds from ``DEMO_FIRST_SEED`` on with noise drawn per seed, so the larger pool's
    first episodes are the smaller pool's: subsets and cells already made from it stay valid."""
    pool_dir = _pool_dir(out, pool.name)
    if not (pool_dir / "meta" / "info.json").exists():
        return None  # not recorded yet (or interrupted): its record stage starts it afresh
    try:
        recorded = LeRobotV3Dataset(pool_dir).num_episodes
    except DatasetError as error:
        raise QuickstartError(f"the {pool.name} pool cannot be read: {error}") from error
    if recorded >= episodes:
        return None
    kept = move_aside(pool_dir, f"{recorded}-demos")
    print(
        f"the {pool.name} pool has {recorded} demonstrations and this grid needs {episodes}: recording it "
        f"again from the same seeds (the old pool is kept at {kept})",
        flush=True,
    )
    return kept


def _sweep_ray_args(workers: int | None, address: str | None) -> tuple[str, ...]:
    """The sweep's workers, and the cluster it joins when ``--address`` names one."""
    worker_args = ("--workers", str(workers)) if workers else ()
    return (*worker_args, "--ray-address", address) if address and address != "local" else worker_args


def _train_stage(out: Path, recipe: Recipe, demos: int) -> Stage:
    """Train the recipe on the cell's subset into its run folder (on its tiny backbone, if it has one)."""
    subset = _subset_dir(out, recipe.pool, demos)
    run = _run_dir(out, recipe.name, demos)
    backbone = backbone_dir(out, recipe.tiny_backbone) if recipe.tiny_backbone else None
    # not part of train_args: the folder depends on --out, the cell's stored recipe must not
    backbone_args = ("--tiny-backbone", str(backbone)) if backbone else ()
    train_args = ("--dataset", str(subset), "--out", str(run), *recipe.train_args, *backbone_args)
    return Stage(
        f"train-{recipe.name}-{demos}",
        f"train {recipe.name} on {demos} demonstrations",
        recipe.train_target,
        recipe.train_target.replace("/", ".").replace(":", "."),
        (*train_args, *RESUMING_TRAINERS.get(recipe.train_target, ())),
        run / "checkpoints" / recipe.last_checkpoint,
        output=run,
        resumes=recipe.train_resumes,
        # a backbone built again is other weights: the run is stale
        inputs=(subset, *([backbone] if backbone else [])),
        # the same run as one stamped before the trainer took its resume flag
        fingerprint=train_args,
    )


def cell_stages(
    out: Path, recipe: Recipe, demos: int, eval_seeds: int, workers: int | None, address: str | None = None
) -> list[Stage]:
    """Subset the pool, train, evaluate the last checkpoint (on the cluster at ``address``, if one is
    named): the stages of one cell."""
    subset = _subset_dir(out, recipe.pool, demos)
    evaluation = _eval_dir(out, recipe.name, demos)
    train = _train_stage(out, recipe, demos)
    return [
        Stage(
            f"subset-{recipe.pool}-{demos}",
            f"the first {demos} demonstrations of the {recipe.pool} pool",
            "libs/datasets:convert",
            "libs.datasets.convert",
            (
                "filter",
                str(_pool_dir(out, recipe.pool)),
                str(subset),
                "--episodes",
                ",".join(str(index) for index in range(demos)),
            ),
            subset / "meta" / "info.json",
            output=subset,
            resumes=False,
            inputs=(_pool_dir(out, recipe.pool),),
        ),
        train,
        Stage(
            f"eval-{recipe.name}-{demos}",
            f"evaluate {recipe.name}-{demos} on {eval_seeds} shared seeds",
            recipe.sweep_target,
            "services.eval.sweep",
            (
                "--policy",
                f"{recipe.policy_prefix}:{train.done_marker}",
                "--episodes",
                str(eval_seeds),
                "--out",
                str(evaluation),
                *_sweep_ray_args(workers, address),
            ),
            evaluation / "report.json",
            output=evaluation,
            inputs=(train.output,),
        ),
    ]


def training_run(recipe: Recipe, train: Stage, gpu: bool = False) -> TrainingRun:
    """A cell's train stage as a run of the training runner: the same command, folder and stamp, the
    recipe's threads reserved on Ray."""
    args = list(recipe.train_args)
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 1
    return TrainingRun(
        name=train.output.name,
        trainer=trainer_of_target(recipe.train_target),
        argv=train.argv,
        output=train.output,
        done_marker=train.done_marker,
        threads=threads,
        gpu=gpu,
        fingerprint=train.fingerprint,
        inputs=train.inputs,
    )


def runs_file(out: Path, trainer: str) -> Path:
    return out / f"train_runs-{trainer}.json"


def runner_command(out: Path, trainer: str, address: str, workers: int | None, pants: str) -> list[str]:
    """The training runner of ``trainer``'s resolve on the runs file of this grid's cells."""
    worker_args = ("--workers", str(workers)) if workers else ()
    return [
        pants, "--no-pantsd", "run", TRAINERS[trainer].runner_target, "--",
        "--runs", str(runs_file(out, trainer)), "--address", address, *worker_args,
    ]  # fmt: skip


def train_cells_on_ray(
    out: Path, cells: Sequence[tuple[Recipe, int]], args: argparse.Namespace, buildroot: Path, pants: str
) -> None:
    """Every unfinished cell's subset made here, then its training on Ray: one runner per stack's resolve,
    each given its cells at once. A run that finishes is stamped as its train stage would be."""
    grouped: dict[str, list[TrainingRun]] = {}
    for recipe, demos in cells:
        cell_file = _cell_path(out, recipe.name, demos)
        if cell_file.exists() and why_cell_is_stale(cell_file, recipe, args.eval_seeds) is None:
            continue
        subset, train, _ = cell_stages(out, recipe, demos, args.eval_seeds, args.workers, args.address)
        run_stages([subset], buildroot, pants)
        run = training_run(recipe, train, args.gpu)
        grouped.setdefault(run.trainer, []).append(run)
    for trainer, runs in grouped.items():
        write_runs_file(runs_file(out, trainer), runs)
        command = runner_command(out, trainer, args.address, args.workers, pants)
        print(
            f"\n=== {len(runs)} cell(s) trained on Ray ({trainer}) ===\n      $ {' '.join(command)}",
            flush=True,
        )
        completed = subprocess.run(command, cwd=buildroot, check=False)
        if completed.returncode != 0:
            raise QuickstartError(
                f"training the cells on Ray failed (exit {completed.returncode}): fix what it printed above, "
                "then rerun the same command (finished cells are skipped, unfinished ones continue)"
            )


def why_cell_is_stale(cell_file: Path, recipe: Recipe, eval_seeds: int) -> str | None:
    """Why a stored cell does not answer this grid's question (another recipe, pool or seed count)."""
    try:
        cell = json.loads(cell_file.read_text())
    except (OSError, ValueError) as error:
        return f"cannot be read ({error})"
    if cell.get("train_args") != list(recipe.train_args):
        return f"was trained with {cell.get('train_args')}, the recipe now says {list(recipe.train_args)}"
    if cell.get("record_args") != list(POOLS[recipe.pool].record_args):
        return f"used a pool recorded with {cell.get('record_args')}"
    if cell.get("episodes") != eval_seeds:
        return f"was evaluated on {cell.get('episodes')} seeds, not {eval_seeds}"
    return None


def read_cell(out: Path, recipe: Recipe, demos: int, train_seconds: float | None) -> dict:
    """The cell's figures from its sweep report."""
    report = json.loads((_eval_dir(out, recipe.name, demos) / "report.json").read_text())
    summary = report["checkpoints"][0]
    episodes = int(summary["episodes"])
    successes = round(float(summary["success_rate"]) * episodes)
    low, high = wilson_interval(successes, episodes)
    return {
        "policy": recipe.name,
        "demos": demos,
        "episodes": episodes,
        "successes": successes,
        "success_rate": successes / episodes if episodes else 0.0,
        "wilson95": [low, high],
        "outcomes": summary.get("outcome_counts", {}),
        "train_seconds": train_seconds,
        "train_args": list(recipe.train_args),
        "record_args": list(POOLS[recipe.pool].record_args),
    }


def write_outputs(out: Path) -> tuple[Path, Path]:
    """``learning_curves.md`` (a table per cell) and ``learning_curves.png`` from every finished cell."""
    cells = [json.loads(path.read_text()) for path in sorted((out / CELLS_DIR).glob("*.json"))]
    cells.sort(key=lambda cell: (cell["policy"], cell["demos"]))
    lines = [
        "# Learning curves: success vs scripted demonstrations",
        "",
        "Each cell: the first N scripted demos of one pool, trained with the recipe's command, the last "
        "checkpoint evaluated on the same shared seeds. Interval: 95% Wilson.",
        "",
        "| policy | demos | success | 95% CI | outcomes | train wall time |",
        "|---|---:|---:|---|---|---:|",
    ]
    for cell in cells:
        low, high = cell["wilson95"]
        outcomes = ", ".join(f"{name} {count}" for name, count in sorted(cell["outcomes"].items()) if count)
        minutes = "–" if cell["train_seconds"] is None else f"{cell['train_seconds'] / 60:.1f} min"
        lines.append(
            f"| {cell['policy']} | {cell['demos']} | {cell['successes']}/{cell['episodes']} "
            f"({100 * cell['success_rate']:.0f}%) | {100 * low:.0f}–{100 * high:.0f}% | {outcomes} "
            f"| {minutes} |"
        )
    markdown = out / "learning_curves.md"
    markdown.write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for policy in sorted({cell["policy"] for cell in cells}):
        mine = [cell for cell in cells if cell["policy"] == policy]
        demos = [cell["demos"] for cell in mine]
        rates = [cell["success_rate"] for cell in mine]
        below = [cell["success_rate"] - cell["wilson95"][0] for cell in mine]
        above = [cell["wilson95"][1] - cell["success_rate"] for cell in mine]
        axes.errorbar(demos, rates, yerr=[below, above], marker="o", capsize=3, label=policy)
    axes.set_xscale("log", base=2)
    axes.set_xticks(DEMO_COUNTS, [str(count) for count in DEMO_COUNTS])
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("scripted demonstrations")
    axes.set_ylabel("success (95% Wilson)")
    axes.set_title("SO-101 block → bowl: success vs demonstrations")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    picture = out / "learning_curves.png"
    figure.savefig(picture, dpi=120)
    plt.close(figure)
    return markdown, picture


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learning_curves", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("results/learning_curves"))
    parser.add_argument("--policies", default=",".join(RECIPES), help=f"comma list of {', '.join(RECIPES)}")
    parser.add_argument("--demos", default=",".join(str(n) for n in DEMO_COUNTS), help="comma list of N")
    parser.add_argument("--eval-seeds", type=int, default=100, help="shared evaluation seeds 0..K-1")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel evaluation episodes; with --address also the cells trained at once",
    )
    parser.add_argument(
        "--address",
        "--ray-address",
        dest="address",
        default=None,
        help="train the cells as Ray tasks: a cluster HEAD:PORT (its evaluations run there too) or 'local' "
        "for this machine's cores (default: one cell after another, each its own train command)",
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="with --address: each training run asks for a GPU where a node has one",
    )
    parser.add_argument(
        "--train-seeds",
        default="",
        help="comma list of training seeds: each recipe trained once per seed, as the recipe "
        "<policy>-seed<S> (default: the recipe's own seed)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print every command and exit")
    return parser


def _chosen_policies(text: str) -> list[str]:
    policies = _comma_list(text)
    unknown = [name for name in policies if name not in RECIPES]
    if unknown:
        raise QuickstartError(f"unknown policy recipe {unknown[0]!r}: choose from {', '.join(RECIPES)}")
    return policies


def with_seed(recipe: Recipe, seed: int) -> Recipe:
    """The recipe trained with ``seed``: a recipe of its own (its own cells, runs and curve), so that seeds
    are cells of the grid like demonstration counts."""
    return replace(
        recipe, name=f"{recipe.name}-seed{seed}", train_args=(*recipe.train_args, "--seed", str(seed))
    )


def _chosen_recipes(policies: Sequence[str], seeds_text: str) -> list[Recipe]:
    try:
        seeds = sorted({int(part) for part in _comma_list(seeds_text)})
    except ValueError as error:
        raise QuickstartError(f"--train-seeds {seeds_text!r} must be a comma list of integers") from error
    if any(seed < 0 for seed in seeds):
        raise QuickstartError(f"--train-seeds {seeds_text!r} must name seeds of 0 or more")
    if not seeds:
        return [RECIPES[name] for name in policies]
    return [with_seed(RECIPES[name], seed) for name in policies for seed in seeds]


def _demo_counts(text: str) -> list[int]:
    try:
        demo_counts = sorted({int(part) for part in _comma_list(text)})
    except ValueError as error:
        raise QuickstartError(f"--demos {text!r} must be a comma list of integers") from error
    if not demo_counts or demo_counts[0] < 1:
        raise QuickstartError(f"--demos {text!r} must name positive counts")
    return demo_counts


def _run_cell(
    out: Path,
    recipe: Recipe,
    demos: int,
    title: str,
    args: argparse.Namespace,
    buildroot: Path,
    pants: str,
) -> None:
    """Trains and sweeps one (recipe, demos) cell unless its stored result is current, then rewrites the
    table and figure so an interrupted study still shows every finished cell."""
    cell_file = _cell_path(out, recipe.name, demos)
    if cell_file.exists():
        stale = why_cell_is_stale(cell_file, recipe, args.eval_seeds)
        if stale is None:
            print(f"{title} {recipe.name}-{demos}: done ({cell_file}), skipping")
            return
        kept = move_aside(cell_file, "stale")
        print(f"cell {recipe.name}-{demos}: the stored result {stale}; moved to {kept}", flush=True)
    print(f"\n=== {title}: {recipe.name} on {demos} demonstrations ===", flush=True)
    stages = cell_stages(out, recipe, demos, args.eval_seeds, args.workers, args.address)
    timings = run_stages(stages, buildroot, pants)
    trained = [sec for name, sec, how in timings if name.startswith("train-") and how == "ran"]
    # trained on Ray (--address): the training runner's record says how long
    record = read_record(_run_dir(out, recipe.name, demos))
    train_seconds = trained[0] if trained else (record or {}).get("seconds")
    cell = read_cell(out, recipe, demos, train_seconds)
    cell_file.parent.mkdir(parents=True, exist_ok=True)
    cell_file.write_text(json.dumps(cell, indent=2) + "\n")
    low, high = cell["wilson95"]
    print(
        f"cell {recipe.name}-{demos}: {cell['successes']}/{cell['episodes']} "
        f"({100 * low:.0f}–{100 * high:.0f}%)",
        flush=True,
    )
    write_outputs(out)


def _print_plan(
    out: Path, setup_stages: list[Stage], cells: list[tuple[Recipe, int]], args: argparse.Namespace
) -> None:
    """--dry-run: every stage's command in order, with --address the runners that train the cells after the
    pools are recorded and the backbones built (each cell's subset is made just before)."""
    for stage in setup_stages:
        print(f"# {stage.name}: {stage.description}\n{stage.shell_command()}")
    if args.address:
        for trainer in sorted({trainer_of_target(recipe.train_target) for recipe, _ in cells}):
            command = " ".join(runner_command(out, trainer, args.address, args.workers, "./pants"))
            print(
                f"# the {trainer} cells' training as Ray tasks (their train stages are then done)\n{command}"
            )
    for recipe, demos in cells:
        for stage in cell_stages(out, recipe, demos, args.eval_seeds, args.workers, args.address):
            print(f"# {stage.name}: {stage.description}\n{stage.shell_command()}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        recipes = _chosen_recipes(_chosen_policies(args.policies), args.train_seeds)
        demo_counts = _demo_counts(args.demos)
        buildroot = find_buildroot(Path.cwd())
        out = args.out if args.out.is_absolute() else buildroot / args.out
        pants = os.environ.get("SO101LAB_PANTS", str(buildroot / "pants"))
        pools = sorted({recipe.pool for recipe in recipes})
        setup_stages = [pool_stage(out, POOLS[pool], max(demo_counts)) for pool in pools]
        # the backbones are made with the pools, before any cell trains on them
        backbones = sorted({recipe.tiny_backbone for recipe in recipes if recipe.tiny_backbone})
        setup_stages += [backbone_stage(out, policy) for policy in backbones]
        cells = [(recipe, demos) for recipe in recipes for demos in demo_counts]
        if args.dry_run:
            _print_plan(out, setup_stages, cells, args)
            return 0
        for pool in pools:
            set_aside_short_pool(out, POOLS[pool], max(demo_counts))
        run_stages(setup_stages, buildroot, pants)
        if args.address:
            train_cells_on_ray(out, cells, args, buildroot, pants)
        for number, (recipe, demos) in enumerate(cells, start=1):
            _run_cell(out, recipe, demos, f"cell {number}/{len(cells)}", args, buildroot, pants)
        if any((out / CELLS_DIR).glob("*.json")):
            markdown, picture = write_outputs(out)
            print(f"\nlearning curves: {markdown} and {picture}")
    except QuickstartError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume; finished cells are skipped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
