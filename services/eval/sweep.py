"""``./pants run services/eval:sweep -- --policy scripted --episodes 30 --workers 8 --out results/x``

Scores one checkpoint, or every checkpoint of a run, on the same seeds (or a ``--grid`` of block positions)
and writes ``report.md``, ``report.json``, ``plots/``, the per-episode store and the exact command and
versions into ``--out``. Running the same command again resumes: finished episodes are never re-run.
Torch and JAX policies run in-process through their own targets (``services/eval:sweep-torch_lerobot``,
``services/eval:sweep-jax_openpi``), which bundle the backend.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from libs.evaluation.executor import EnvSettings
from libs.evaluation.report import REPORT_MD
from libs.evaluation.store import ResultsStoreError
from libs.evaluation.sweep import SweepConfig, SweepError, evaluate
from libs.policy_api.contracts import ContractViolation
from libs.policy_api.registry import PolicyLoadError
from libs.sim.gl import GLBackendError
from libs.sim.scene_config import SceneConfigError
from libs.viz.whiskers import WHISKER_MODES, WhiskerError


def parse_grid(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*(?:[x×,]\s*(\d+))?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"--grid {text!r} is not COLUMNSxROWS: e.g. --grid 5x5 or --grid 5")
    columns = int(match.group(1))
    rows = int(match.group(2) or columns)
    if columns < 1 or rows < 1:
        raise argparse.ArgumentTypeError(f"--grid {text!r} needs at least one column and row")
    return (columns, rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep", description="Evaluate checkpoints × seeds on Ray, resumably, with honest statistics."
    )
    parser.add_argument(
        "--policy",
        required=True,
        help="scripted | torch_lerobot:<run, checkpoints dir or checkpoint> | jax_openpi:<...> | "
        "remote:ws://host:port (a run or checkpoints dir expands to each checkpoint)",
    )
    parser.add_argument("--episodes", type=int, default=10, help="seeds per checkpoint (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (all checkpoints share the seeds)")
    parser.add_argument(
        "--grid",
        type=parse_grid,
        default=None,
        metavar="CxR",
        help="evaluate on a COLUMNSxROWS grid of block positions over the scene's block region instead of "
        "random seeds, and draw a spatial success map",
    )
    parser.add_argument("--out", required=True, type=Path, help="results folder (reused to resume)")
    parser.add_argument("--workers", type=int, default=None, help="parallel episodes (default: all cores)")
    parser.add_argument(
        "--ray-address", default=None, help="join this Ray cluster (host:port, ray://host:port or auto)"
    )
    parser.add_argument("--serial", action="store_true", help="run in this process without Ray")
    parser.add_argument(
        "--scene",
        default=None,
        help="scene.json to evaluate in; its cameras must match each checkpoint's training scene "
        "(default: each checkpoint's own scene.json, else the bench scene)",
    )
    parser.add_argument("--max-steps", type=int, default=None, help="episode step limit (default: the env's)")
    parser.add_argument("--task", default=None, help="language prompt (default: the env's)")
    parser.add_argument(
        "--no-scene-check",
        action="store_true",
        help="allow cameras that differ from the checkpoint's training scene (deliberate shift experiments)",
    )
    parser.add_argument(
        "--training-data",
        default=None,
        help="dataset root whose recorded block positions the --grid map overlays "
        "(default: block_positions.json beside each checkpoint)",
    )
    parser.add_argument(
        "--episode-timeout", type=float, default=600.0, help="seconds without any finished episode = hung"
    )
    parser.add_argument(
        "--whiskers",
        type=int,
        default=0,
        metavar="N",
        help="per checkpoint, play N episodes again (failures first) with whiskers: videos and plots in "
        "OUT/whiskers/, likely causes of failure in the report (default 0)",
    )
    parser.add_argument(
        "--whiskers-mode",
        choices=WHISKER_MODES,
        default="dynamic",
        help="dynamic: chunks forward-simulated with physics and contacts (default); kinematic: joints "
        "placed at targets, no contacts (faster)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    config = SweepConfig(
        policy=arguments.policy,
        episodes=arguments.episodes,
        base_seed=arguments.seed,
        grid=arguments.grid,
        env=EnvSettings(
            scene_path=arguments.scene,
            max_steps=arguments.max_steps,
            task=arguments.task,
            check_scene=not arguments.no_scene_check,
        ),
        workers=arguments.workers,
        ray_address=arguments.ray_address,
        serial=arguments.serial,
        episode_timeout_s=arguments.episode_timeout,
        training_data=arguments.training_data,
        progress=not arguments.no_progress,
        whiskers=max(0, arguments.whiskers),
        whiskers_mode=arguments.whiskers_mode,
    )
    command = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    try:
        result = evaluate(config, arguments.out, argv=command)
    except (
        ContractViolation,
        PolicyLoadError,
        SweepError,
        ResultsStoreError,
        SceneConfigError,
        WhiskerError,
        GLBackendError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: finished episodes are kept in {arguments.out}; run the same command to resume")
        return 130
    best = result.report.best
    print(f"ran {result.ran} episodes, {result.skipped} already done")
    if best is not None:
        low, high = best.success_ci95
        print(
            f"best: {best.checkpoint_id} {best.successes}/{best.episodes} "
            f"({100 * best.success_rate:.0f}%, 95% interval {100 * low:.0f}–{100 * high:.0f}%)"
        )
    if result.report.violations:
        print(
            f"warning: {result.report.violations} episode(s) stopped on unsafe actions (NaN or far outside "
            "the joint limits); see 'Contract violations' in the report"
        )
    if config.whiskers:
        print(f"whiskers: {result.out_dir / 'whiskers'} (likely causes in the report)")
    print(f"report: {result.out_dir / REPORT_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
