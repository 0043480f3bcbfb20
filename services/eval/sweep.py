"""``./pants run services/eval:sweep -- --policy scripted --episodes 30 --workers 8 --out results/x``

Scores one checkpoint, or every checkpoint of a run, on the same seeds (or a ``--grid`` of block positions)
and writes ``report.md``, ``report.json``, ``plots/``, the per-episode store and the exact command and
versions into ``--out``. Running the same command again resumes: finished episodes are never re-run.
Torch and JAX policies run in-process through their own targets (``services/eval:sweep-torch_lerobot``,
``services/eval:sweep-jax_openpi``), which bundle the backend.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from libs.evaluation.planner import PlanError
from libs.evaluation.report import REPORT_MD
from libs.evaluation.sequential import SequentialTestError
from libs.evaluation.store import STORE_FILE_NAME, ResultsStoreError
from libs.evaluation.sweep import EnvSettings, SweepConfig, SweepError, evaluate
from libs.evaluation.until_decided import UntilDecided
from libs.policy_api.contracts import ContractViolation
from libs.policy_api.registry import PolicyLoadError
from libs.sim.gl import GLBackendError
from libs.sim.scene_config import SceneConfigError
from libs.viz.whiskers import WHISKER_MODES, WhiskerError
from services.eval.stopping import stop_like_ctrl_c

#: errors of the folder being written (full disk, quota, read-only, permissions): one line, results kept
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG})


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of episodes, e.g. 4")
    return value


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
        "--lockstep-envs",
        type=_positive_int,
        default=1,
        help="episodes of one checkpoint each worker plays together, one batched inference for the "
        "observations due (LeRobot and JAX policies; default 1: one at a time)",
    )
    parser.add_argument(
        "--scene",
        default=None,
        help="scene.json to evaluate in; its cameras must match each checkpoint's training scene "
        "(default: the training scene each checkpoint's card carries, else the bench scene)",
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
        "(default: the block positions each checkpoint's card carries)",
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
    parser.add_argument(
        "--compare-to",
        default=None,
        metavar="POLICY",
        help="a second policy (same forms as --policy) scored on the same seeds, e.g. with --until-decided",
    )
    parser.add_argument(
        "--perturbations",
        default=None,
        metavar="all|NAME,NAME",
        help="also run these perturbation arms declared in the --scene's 'perturbations' list on the same "
        "seeds, and report each arm's paired difference from the unperturbed control",
    )
    sequential = parser.add_argument_group(
        "sequential decision", "stop as soon as the episodes decide (plan the budget with services/eval:plan)"
    )
    sequential.add_argument(
        "--until-decided",
        action="store_true",
        help="run rounds of episodes until an anytime-valid test decides which of two checkpoints is "
        "better (or whether one is above --target-rate), or --max-episodes runs out",
    )
    sequential.add_argument("--alpha", type=float, default=0.05, help="error rate of the decision (0.05)")
    sequential.add_argument("--max-episodes", type=int, default=None, help="budget per checkpoint")
    sequential.add_argument(
        "--target-rate", type=float, default=None, help="test one checkpoint against this success rate"
    )
    sequential.add_argument(
        "--round",
        type=int,
        default=None,
        metavar="N",
        help="episodes per checkpoint per round (default: workers)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def until_decided_rule(arguments: argparse.Namespace) -> UntilDecided | None:
    """The stopping rule the arguments ask for (None without --until-decided)."""
    sequential_only = {"--max-episodes": arguments.max_episodes, "--target-rate": arguments.target_rate}
    if not arguments.until_decided:
        given = [name for name, value in sequential_only.items() if value is not None]
        if given:
            raise PlanError(f"{', '.join(given)} only applies with --until-decided: add it, or drop them")
        return None
    if arguments.max_episodes is None:
        raise PlanError(
            "--until-decided needs --max-episodes (the budget per checkpoint): "
            "`./pants run services/eval:plan -- --rates 0.8 0.6` suggests one"
        )
    return UntilDecided(
        max_episodes=arguments.max_episodes,
        alpha=arguments.alpha,
        target_rate=arguments.target_rate,
        round_episodes=arguments.round,
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        rule = until_decided_rule(arguments)
    except (PlanError, SequentialTestError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
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
            lockstep_envs=arguments.lockstep_envs,
        ),
        workers=arguments.workers,
        ray_address=arguments.ray_address,
        serial=arguments.serial,
        episode_timeout_s=arguments.episode_timeout,
        training_data=arguments.training_data,
        progress=not arguments.no_progress,
        whiskers=max(0, arguments.whiskers),
        whiskers_mode=arguments.whiskers_mode,
        compare_to=arguments.compare_to,
        until_decided=rule,
        perturbations=tuple(
            name.strip() for name in (arguments.perturbations or "").split(",") if name.strip()
        ),
    )
    command = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    # SIGTERM, SIGHUP and `./pants run` going away stop the sweep as Ctrl-C does (signal handlers need the
    # main thread: a caller on another thread keeps its own).
    stopping = stop_like_ctrl_c() if threading.current_thread() is threading.main_thread() else None
    with stopping or contextlib.nullcontext() as stop:
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
        except OSError as error:
            if error.errno not in DISK_ERRORS:
                raise
            print(
                f"error: cannot write {error.filename or arguments.out} ({error.strerror}): free space (or "
                f"pick another --out), then run the same command; the episodes stored in "
                f"{arguments.out / STORE_FILE_NAME} are kept and will not be run again",
                file=sys.stderr,
            )
            return 2
        except KeyboardInterrupt:
            name = signal.Signals(stop.signal).name if stop and stop.signal else "SIGINT"
            print(
                f"interrupted ({name}): the workers are stopped and finished episodes are kept in "
                f"{arguments.out}; run the same command to resume"
            )
            return stop.exit_status if stop else 130
    best = result.report.best
    print(f"ran {result.ran} episodes, {result.skipped} already done")
    if result.decision is not None:
        decision = result.decision
        print(
            f"decision: {decision['verdict']} (e-value {decision['e_value']:.3g}, anytime p "
            f"{decision['p_value']:.3g}); {decision['episodes_run']} of {decision['budget']} episodes per "
            f"checkpoint run, {decision['saved_against_budget']} saved"
        )
    if best is not None:
        low, high = best.success_ci95
        print(
            f"best: {best.checkpoint_id} {best.successes}/{best.episodes} "
            f"({100 * best.success_rate:.0f}%, 95% interval {100 * low:.0f}–{100 * high:.0f}%)"
        )
    # Why each checkpoint's episodes failed, in words and numbers (the report lists every episode).
    causes = json.loads(result.report.json_path.read_text()).get("failure_causes") or {}
    for checkpoint_id, entry in causes.items():
        if entry["failed"]:
            print(f"why {checkpoint_id} failed: {entry['sentence']}")
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
