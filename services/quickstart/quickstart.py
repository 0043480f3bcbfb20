"""``./pants run //:quickstart``: from nothing to a report in one command.

Stages, each a command of its own that can be run alone (``--dry-run`` prints them):
1. record   scripted demonstrations into a LeRobot v3 dataset          (libs/datasets:record, resolve sim)
2. train-act  a small LeRobot ACT policy on them                        (backends/torch_lerobot:train)
3. train-jax  a small Pi0-style JAX policy on them                      (backends/jax_openpi:train)
4. eval-act   Ray sweep of the ACT checkpoints on shared seeds          (services/eval:sweep-torch_lerobot)
5. eval-jax   the same for the JAX checkpoints                          (services/eval:sweep-jax_openpi)
6. summary    one table over both sweeps, with links to their reports  (this module)

The torch and JAX stacks live in different Pants resolves, so one process cannot hold both: the quickstart
runs every stage as its own ``./pants run`` and the sweeps write their reports side by side. A stage whose
output already exists is skipped, so rerunning after an interruption resumes where it stopped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Seed of the first demonstration; the sweeps use seeds 0, 1, ... (their default), far below it.
DEMO_FIRST_SEED = 100_000


class QuickstartError(RuntimeError):
    """A stage failed or the quickstart cannot start; the message names the fix."""


@dataclass(frozen=True)
class Sizes:
    """How much work each stage does. ``default`` fits in ~20 minutes on 2 CPU cores."""

    episodes: int
    act_steps: int
    act_save_freq: int
    jax_config: str
    jax_steps: int
    jax_save_interval: int
    eval_episodes: int
    whiskers: int
    image_size: str


SIZES: dict[str, Sizes] = {
    # Measured here (2 idle cores): ACT cpu preset ~3.5 steps/s, JAX so101_cpu ~11 steps/s, recording
    # 40 demos ~1 min, each sweep ~3 min; plus ~40 s of Pants and imports per stage.
    "default": Sizes(
        episodes=40,
        act_steps=1500,
        act_save_freq=500,
        jax_config="so101_cpu",
        jax_steps=1800,
        jax_save_interval=600,
        eval_episodes=10,
        whiskers=1,
        image_size="96x128",
    ),
    # What the integration test runs: every stage end to end at toy sizes.
    "tiny": Sizes(
        episodes=2,
        act_steps=4,
        act_save_freq=2,
        jax_config="so101_test",
        jax_steps=4,
        jax_save_interval=2,
        eval_episodes=2,
        whiskers=1,
        image_size="48x64",
    ),
}


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    #: the Pants target that runs this stage on its own
    target: str
    #: module whose ``main(argv) -> int`` the target runs (used to run a stage in-process in tests)
    module: str
    argv: tuple[str, ...]
    #: a path that exists once the stage has finished
    done_marker: Path
    #: a directory the stage's command must create itself (it refuses an existing one)
    fresh_dir: Path | None = None

    def command(self, pants: str = "./pants") -> list[str]:
        return [pants, "--no-pantsd", "run", self.target, "--", *self.argv]

    def shell_command(self) -> str:
        return " ".join(self.command())


def plan_stages(out: Path, sizes: Sizes, workers: int | None = None) -> list[Stage]:
    data = out / "data"
    act_run = out / "runs" / "act"
    jax_run = out / "runs" / "jax"
    worker_args = ("--workers", str(workers)) if workers else ()
    return [
        Stage(
            "record",
            f"record {sizes.episodes} scripted demonstrations",
            "libs/datasets:record",
            "libs.datasets.record",
            (
                "--out",
                str(data),
                "--episodes",
                str(sizes.episodes),
                "--image-size",
                sizes.image_size,
                # Demonstrations are successful expert episodes on seeds the sweeps never use, so the
                # report measures generalisation to new layouts, not replay of the training set.
                "--seed",
                str(DEMO_FIRST_SEED),
                "--keep",
                "success",
            ),
            data / "meta" / "info.json",
        ),
        Stage(
            "train-act",
            f"train LeRobot ACT for {sizes.act_steps} steps",
            "backends/torch_lerobot:train",
            "backends.torch_lerobot.train",
            (
                "--policy",
                "act",
                "--preset",
                "cpu",
                "--dataset",
                str(data),
                "--out",
                str(act_run),
                "--steps",
                str(sizes.act_steps),
                "--save-freq",
                str(sizes.act_save_freq),
            ),
            act_run / "checkpoints" / f"{sizes.act_steps:06d}",
            fresh_dir=act_run,
        ),
        Stage(
            "train-jax",
            f"train the JAX Pi0-style policy ({sizes.jax_config}) for {sizes.jax_steps} steps",
            "backends/jax_openpi:train",
            "backends.jax_openpi.train",
            (
                "--config",
                sizes.jax_config,
                "--dataset",
                str(data),
                "--out",
                str(jax_run),
                "--steps",
                str(sizes.jax_steps),
                "--save-interval",
                str(sizes.jax_save_interval),
                "--compute-norm-stats",
            ),
            jax_run / "checkpoints" / f"{sizes.jax_steps:06d}",
        ),
        Stage(
            "eval-act",
            f"sweep the ACT checkpoints on {sizes.eval_episodes} shared seeds with Ray",
            "services/eval:sweep-torch_lerobot",
            "services.eval.sweep",
            (
                "--policy",
                f"torch_lerobot:{act_run}",
                "--episodes",
                str(sizes.eval_episodes),
                "--whiskers",
                str(sizes.whiskers),
                "--out",
                str(out / "eval" / "act"),
                *worker_args,
            ),
            out / "eval" / "act" / "report.json",
        ),
        Stage(
            "eval-jax",
            f"sweep the JAX checkpoints on the same {sizes.eval_episodes} seeds with Ray",
            "services/eval:sweep-jax_openpi",
            "services.eval.sweep",
            (
                "--policy",
                f"jax_openpi:{jax_run}",
                "--episodes",
                str(sizes.eval_episodes),
                "--whiskers",
                str(sizes.whiskers),
                "--out",
                str(out / "eval" / "jax"),
                *worker_args,
            ),
            out / "eval" / "jax" / "report.json",
        ),
        Stage(
            "summary",
            "one table over both sweeps",
            "//:quickstart-summary",
            "services.quickstart.summary",
            ("--out", str(out)),
            out / "summary.md",
        ),
    ]


def find_buildroot(start: Path) -> Path:
    for directory in (start, *start.parents):
        if (directory / "pants.toml").is_file():
            return directory
    raise QuickstartError(f"no pants.toml above {start}: run the quickstart from the so101lab checkout")


def run_stage_in_process(stage: Stage) -> None:
    """Runs a stage's ``main`` in this process (the integration tests do this within one resolve)."""
    main = importlib.import_module(stage.module).main
    code = main(list(stage.argv))
    if code not in (0, None):
        raise QuickstartError(
            f"stage {stage.name} exited with {code}: rerun it alone with: {stage.shell_command()}"
        )


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def run_stages(stages: Sequence[Stage], buildroot: Path, pants: str) -> list[tuple[str, float, str]]:
    timings: list[tuple[str, float, str]] = []
    total = len(stages)
    started = time.monotonic()
    for number, stage in enumerate(stages, start=1):
        header = f"[{number}/{total}] {stage.name}: {stage.description}"
        if stage.done_marker.exists():
            print(f"{header} — already done ({stage.done_marker}), skipping", flush=True)
            timings.append((stage.name, 0.0, "skipped"))
            continue
        print(f"\n{header}\n      $ {stage.shell_command()}", flush=True)
        if stage.fresh_dir is not None and stage.fresh_dir.exists():
            # An interrupted run of a stage that needs a new directory: keep it, out of the way.
            kept = _move_aside(stage.fresh_dir)
            print(f"      an unfinished earlier run was moved to {kept}", flush=True)
        stage_started = time.monotonic()
        completed = subprocess.run(stage.command(pants), cwd=buildroot, check=False)
        elapsed = time.monotonic() - stage_started
        if completed.returncode != 0:
            raise QuickstartError(
                f"stage {stage.name} failed (exit {completed.returncode}) after {_format_seconds(elapsed)}; "
                f"fix what it printed above, then rerun the quickstart (finished stages are skipped) "
                f"or only this stage: {stage.shell_command()}"
            )
        timings.append((stage.name, elapsed, "ran"))
        print(
            f"      done in {_format_seconds(elapsed)} (total {_format_seconds(time.monotonic() - started)})",
            flush=True,
        )
    return timings


def _move_aside(directory: Path) -> Path:
    for number in range(1, 1000):
        target = directory.with_name(f"{directory.name}.interrupted-{number}")
        if not target.exists():
            directory.rename(target)
            return target
    raise QuickstartError(f"too many interrupted runs beside {directory}: delete the *.interrupted-* folders")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/quickstart"), help="where everything goes")
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="default", help="default: about 20 min on 2 cores"
    )
    parser.add_argument("--workers", type=int, default=None, help="parallel evaluation episodes")
    parser.add_argument(
        "--only", default=None, help="comma-separated stage names (default: all, skipping finished ones)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print each stage's command and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        buildroot = find_buildroot(Path.cwd())
        out = arguments.out if arguments.out.is_absolute() else buildroot / arguments.out
        stages = plan_stages(out, SIZES[arguments.size], arguments.workers)
        if arguments.only:
            wanted = {name.strip() for name in arguments.only.split(",")}
            unknown = wanted - {stage.name for stage in stages}
            if unknown:
                names = ", ".join(stage.name for stage in stages)
                raise QuickstartError(f"unknown stage(s) {', '.join(sorted(unknown))}: choose from {names}")
            stages = [stage for stage in stages if stage.name in wanted]
        if arguments.dry_run:
            for stage in stages:
                print(f"# {stage.name}: {stage.description}\n{stage.shell_command()}")
            return 0
        pants = os.environ.get("SO101LAB_PANTS", str(buildroot / "pants"))
        started = time.monotonic()
        timings = run_stages(stages, buildroot, pants)
    except QuickstartError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume; finished stages are skipped", file=sys.stderr)
        return 130
    total = time.monotonic() - started
    print("\nstage timings: " + ", ".join(f"{name} {_format_seconds(s)} ({how})" for name, s, how in timings))
    print(f"quickstart finished in {_format_seconds(total)}")
    summary = out / "summary.md"
    if summary.exists():
        print(f"summary: {summary}")
        best = json.loads((out / "summary.json").read_text()).get("best")
        if best:
            print(f"best checkpoint: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
