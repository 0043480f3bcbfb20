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
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from libs.compute_threads import ThreadChoice, add_threads_flag, apply_threads, cores_given, decide_and_apply
from libs.config_flags import add_flags, config_from_flags
from libs.errors import LabError, one_line_errors
from libs.evaluation.plan.select_best import SelectBest
from libs.evaluation.plan.stop_when_decided import UntilDecided
from libs.evaluation.plan.sweep_config import parse_grid as parse_grid
from libs.evaluation.report.sweep_report import REPORT_MD
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.stats.sample_sizes import PlanError
from libs.evaluation.sweep import EnvSettings, SweepConfig, SweepResult, evaluate
from services.eval.stopping import Stop, stop_like_ctrl_c

#: errors of the folder being written (full disk, quota, read-only, permissions): one line, results kept
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG})


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``SweepConfig``, its ``EnvSettings`` and ``UntilDecided`` (``libs.config_flags``)."""
    parser = argparse.ArgumentParser(
        prog="sweep", description="Evaluate checkpoints × seeds on Ray, resumably, with honest statistics."
    )
    add_flags(parser, SweepConfig)
    add_threads_flag(parser)
    parser.add_argument("--out", required=True, type=Path, help="results folder (reused to resume)")
    add_flags(parser, EnvSettings)
    sequential = parser.add_argument_group(
        "sequential decision", "stop as soon as the episodes decide (plan the budget with services/eval:plan)"
    )
    sequential.add_argument(
        "--until-decided",
        action="store_true",
        help="run rounds of episodes until an anytime-valid test decides which of two checkpoints is "
        "better (or whether one is above --target-rate), or --max-episodes runs out",
    )
    add_flags(sequential, UntilDecided)
    sequential.add_argument(
        "--select-best",
        action="store_true",
        help="run rounds of the checkpoints on shared seeds, dropping each once another is shown better, "
        "until one is shown within --epsilon of the best (with probability 1 - --delta) or --max-episodes "
        "runs out",
    )
    add_flags(sequential, SelectBest)
    return parser


def until_decided_rule(arguments: argparse.Namespace) -> UntilDecided | None:
    """The stopping rule the arguments ask for (None without --until-decided)."""
    sequential_only = {"--max-episodes": arguments.max_episodes, "--target-rate": arguments.target_rate}
    if not arguments.until_decided:
        if arguments.select_best:
            sequential_only.pop("--max-episodes")  # the selection's budget
        given = [name for name, value in sequential_only.items() if value is not None]
        if given:
            raise PlanError(f"{', '.join(given)} only applies with --until-decided: add it, or drop them")
        return None
    if arguments.max_episodes is None:
        raise PlanError(
            "--until-decided needs --max-episodes (the budget per checkpoint): "
            "`./pants run services/eval:plan -- --rates 0.8 0.6` suggests one"
        )
    return config_from_flags(UntilDecided, arguments)


def select_best_rule(arguments: argparse.Namespace) -> SelectBest | None:
    """The best-of-K selection the arguments ask for (None without --select-best)."""
    if not arguments.select_best:
        return None
    if arguments.max_episodes is None:
        raise PlanError("--select-best needs --max-episodes (the budget per checkpoint), e.g. 200")
    return config_from_flags(
        SelectBest, arguments, max_episodes=arguments.max_episodes, round_episodes=arguments.round_episodes
    )


def sweep_config(arguments: argparse.Namespace) -> SweepConfig:
    """The ``SweepConfig`` the parsed flags describe."""
    return config_from_flags(
        SweepConfig,
        arguments,
        env=config_from_flags(EnvSettings, arguments),
        until_decided=until_decided_rule(arguments),
        select_best=select_best_rule(arguments),
    )


@one_line_errors
def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    config = sweep_config(arguments)
    sweep_threads(config, arguments.threads)
    command = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    # SIGTERM, SIGHUP and `./pants run` going away stop the sweep as Ctrl-C does (signal handlers need the
    # main thread: a caller on another thread keeps its own).
    stopping = stop_like_ctrl_c() if threading.current_thread() is threading.main_thread() else None
    with stopping or contextlib.nullcontext() as stop:
        try:
            result = evaluate(config, arguments.out, argv=command)
        except LabError as error:
            raise with_stored_episodes_kept(error, arguments.out) from None
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
            return report_interrupted(stop, arguments.out)
        except Exception:
            # A stop's KeyboardInterrupt raised while a C extension runs (the IK's QP solver) comes out as
            # that extension's own error ("Buffer dtype mismatch"): once a stop was asked for, it is the stop.
            if stop is None or stop.signal is None:
                raise
            return report_interrupted(stop, arguments.out)
    print_summary(result, config)
    return 0


def sweep_threads(config: SweepConfig, override: int | None) -> ThreadChoice | None:
    """Each model's CPU threads, applied before Ray starts or a policy's stack is imported (Ray's workers
    inherit them): one model in this process with --serial, one per Ray worker on this machine's cores; a
    cluster's workers hold one CPU of their node each (issue 32: two torch threads beside a busy core ran a
    serial sweep ~30x slower than one)."""
    if config.serial:
        return decide_and_apply(1, override)
    if config.ray_address in (None, "local"):
        return decide_and_apply(config.workers or cores_given(), override)
    threads = override or 1
    apply_threads(threads)
    print(f"threads: {threads} per Ray worker (each holds one CPU of its node; --threads N overrides)")
    return None


def with_stored_episodes_kept(error: LabError, out: Path) -> LabError:
    """``error`` with what survived it, once episodes are stored (a policy server gone mid-sweep, a worker
    that crashed): they are kept, and the same command runs only what is missing."""
    path = out / STORE_FILE_NAME
    if not path.is_file():
        return error
    try:
        with ResultsStore(path) as store:
            stored = store.count()
    except LabError:  # the store itself is what is wrong: the error says so
        return error
    if not stored:
        return error
    return LabError(
        f"{error}; the {stored} episodes stored in {path} are kept: run the same command to resume"
    )


def report_interrupted(stop: Stop | None, out: Path) -> int:
    """The one line an interrupted sweep prints, and its exit status (128 + the signal)."""
    name = signal.Signals(stop.signal).name if stop and stop.signal else "SIGINT"
    print(
        f"interrupted ({name}): the workers are stopped and finished episodes are kept in {out}; "
        "run the same command to resume"
    )
    return stop.exit_status if stop else 130


def print_summary(result: SweepResult, config: SweepConfig) -> None:
    """What the sweep found, in a few lines: episodes run, the decision, the best, why each failed."""
    best = result.report.best
    print(f"ran {result.ran} episodes, {result.skipped} already done")
    if result.decision is not None and result.decision.get("question") == "select_best":
        selection = result.decision
        print(
            f"selected: {selection['chosen']} ({selection['verdict']}); {len(selection['drops'])} dropped; "
            f"{selection['episodes_run']} of the fixed design's {selection['fixed_design_episodes']} episodes"
        )
    elif result.decision is not None:
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
    if config.whiskers > 0:
        print(f"whiskers: {result.out_dir / 'whiskers'} (likely causes in the report)")
    print(f"report: {result.out_dir / REPORT_MD}")


if __name__ == "__main__":
    sys.exit(main())
