"""Does ACT learn the task? Scripted demos -> LeRobot ACT -> every checkpoint on the same 30 seeds.

    MUJOCO_GL=egl python -m benchmarks.act_learning --episodes 20 --steps 400 --save-every 200 --out /tmp/act
    MUJOCO_GL=egl python -m benchmarks.act_learning --preset gpu --episodes 100 --steps 20000 \\
        --save-every 5000 --image-size 96x128 --batch-size 32 --out runs/act_learning     # on a GPU machine

Steps, each timed: record K scripted episodes (only successful demos are kept; training seeds start at
``--demo-seed`` so they never overlap the evaluation seeds 0..N-1), train ACT with LeRobot's training loop
(``backends.torch_lerobot.train``), evaluate every checkpoint with the lab's harness
(``libs.evaluation.sweep``, ``torch_lerobot:<run>``) on the same seeds in the checkpoint's own scene, then
print one table: success with its 95% Wilson interval, pick rate, failure breakdown, lift height, latency.
The sweep's full report (``report.md``, plots) lands in ``<out>/sweep``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from backends.torch_lerobot.train import TrainError, train_policy
from libs.datasets.record import RecordSummary, record_scripted_dataset
from libs.evaluation.stats.metrics import CheckpointSummary
from libs.evaluation.sweep import EnvSettings, SweepConfig, SweepError, evaluate
from libs.policy_api.contracts import ContractViolation
from libs.sim.scene_config import SceneConfig


def _image_size(text: str) -> tuple[int, int]:
    height, _, width = text.lower().partition("x")
    return int(height), int(width)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="new folder for demos, run and sweep")
    parser.add_argument("--episodes", type=int, default=20, help="K scripted demonstrations to keep")
    parser.add_argument("--demo-seed", type=int, default=10_000, help="first seed of the demonstrations")
    parser.add_argument("--steps", type=int, default=400, help="S training steps")
    parser.add_argument("--save-every", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--preset", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--image-size", type=_image_size, default=(48, 64), help="HxW of both cameras")
    parser.add_argument("--eval-seeds", type=int, default=30, help="evaluation seeds 0..N-1, shared")
    parser.add_argument("--max-steps", type=int, default=None, help="evaluation episode limit (env default)")
    parser.add_argument("--workers", type=int, default=None, help="Ray workers (default: one per core)")
    parser.add_argument("--serial", action="store_true", help="evaluate in this process, without Ray")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads here (Ray workers use 1); 0: torch's default",
    )
    return parser


COLUMNS = ("step", "episodes", "success", "95% CI", "picked", "dropped", "outcomes", "lift mm", "infer ms")


@dataclass
class CheckpointRow:
    step: int
    summary: CheckpointSummary | None
    #: Why the sweep of this checkpoint stopped (a contract violation), when it did.
    error: str | None = None


def evaluate_checkpoint(checkpoint: Path, out: Path, args: argparse.Namespace) -> CheckpointRow:
    """One sweep per checkpoint: the harness stops a sweep at the first contract violation (an undertrained
    ACT can ask for a gripper below 0), which must not hide the later checkpoints."""
    config = SweepConfig(
        policy=f"torch_lerobot:{checkpoint}",
        episodes=args.eval_seeds,
        base_seed=0,
        # No --scene: each checkpoint is evaluated in the training scene its card carries.
        env=EnvSettings(max_steps=args.max_steps),
        workers=args.workers,
        serial=args.serial,
    )
    try:
        result = evaluate(config, out, argv=sys.argv)
    except (ContractViolation, SweepError) as error:
        return CheckpointRow(int(checkpoint.name), None, str(error).splitlines()[0])
    return CheckpointRow(int(checkpoint.name), result.report.summaries[0])


def print_table(rows: list[CheckpointRow], timings: dict[str, float], console: Console) -> None:
    table = Table(title="ACT on SO-101 pick-place: every checkpoint on the same seeds")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "outcomes" else "right")
    for row in rows:
        summary = row.summary
        if summary is None:
            table.add_row(str(row.step), "–", "–", "–", "–", "–", f"stopped: {row.error}", "–", "–")
            continue
        low, high = summary.success_ci95
        outcomes = ", ".join(f"{name} {n}" for name, n in sorted(summary.outcome_counts.items()) if n)
        table.add_row(
            str(summary.step),
            str(summary.episodes),
            f"{100 * summary.success_rate:.0f}%",
            f"{100 * low:.0f}–{100 * high:.0f}%",
            f"{100 * summary.pick_rate:.0f}%",
            "–" if summary.drop_rate is None else f"{100 * summary.drop_rate:.0f}%",
            outcomes,
            f"{1000 * summary.max_block_height_m_max:.0f}",
            f"{summary.latency_mean_ms:.0f}",
        )
    console.print(table)
    console.print("time: " + ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in timings.items()))


def record_demos(demos: Path, args: argparse.Namespace, console: Console) -> RecordSummary:
    """K scripted demonstrations (successes kept) from ``--demo-seed`` on, at ``--image-size``."""
    scene = SceneConfig().with_image_size(*args.image_size)
    summary = record_scripted_dataset(
        demos, episodes=args.episodes, seed=args.demo_seed, scene=scene, keep="success", progress=True
    )
    console.print(f"demos: kept {summary.episodes_kept} of {summary.episodes_run} ({summary.outcomes})")
    return summary


def train_act(demos: Path, run: Path, args: argparse.Namespace) -> list[Path]:
    """ACT trained with LeRobot's loop; its checkpoint folders, one per ``--save-every`` steps."""
    return train_policy(
        "act",
        demos,
        run,
        args.steps,
        preset=args.preset,
        batch_size=args.batch_size,
        save_freq=args.save_every,
        log_freq=max(1, args.steps // 20),
    )


def write_results(
    path: Path,
    args: argparse.Namespace,
    demos: RecordSummary,
    timings: dict[str, float],
    rows: list[CheckpointRow],
) -> None:
    """Every number of the run as JSON: the arguments, the demos kept, the timings and each checkpoint."""
    record = {
        "args": {key: str(value) for key, value in vars(args).items()},
        "demos": {"kept": demos.episodes_kept, "run": demos.episodes_run, "outcomes": demos.outcomes},
        "timings_s": timings,
        "checkpoints": [
            {"step": row.step, "summary": row.summary.to_dict() if row.summary else None, "error": row.error}
            for row in rows
        ],
    }
    path.write_text(json.dumps(record, indent=2))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(width=160)  # the table stays one line per checkpoint in logs too
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        console.print(f"error: {out} is not empty: pass a new --out folder")
        return 2
    timings: dict[str, float] = {}
    if args.threads > 0:
        torch.set_num_threads(args.threads)  # training and serial evaluation run in this process

    started = time.perf_counter()
    demos = out / "demos"
    summary = record_demos(demos, args, console)
    timings["record"] = time.perf_counter() - started

    started = time.perf_counter()
    try:
        checkpoints = train_act(demos, out / "run", args)
    except TrainError as error:
        console.print(f"error: {error}")
        return 2
    timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    rows = [
        evaluate_checkpoint(checkpoint, out / "sweep" / checkpoint.name, args) for checkpoint in checkpoints
    ]
    timings["evaluate"] = time.perf_counter() - started

    print_table(rows, timings, console)
    write_results(out / "act_learning.json", args, summary, timings, rows)
    console.print(f"reports: {out / 'sweep'}/<step>/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
