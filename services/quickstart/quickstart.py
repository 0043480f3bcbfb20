"""``./pants run //:quickstart``: from nothing to a report in one command.

Stages, each a command of its own that can be run alone (``--dry-run`` prints them):
1. record-state     scripted demos with the object state, no cameras   (libs/datasets:record)
2. train-act-state  LeRobot ACT on joint state + object state           (backends/torch_lerobot:train)
3. eval-act-state   Ray sweep of its checkpoints on shared seeds         (services/eval:sweep-torch_lerobot)
4. train-jax-state  the Pi0-style JAX policy on the same state demos     (backends/jax_openpi:train)
5. eval-jax-state   the same sweep for its checkpoints                   (services/eval:sweep-jax_openpi)
6. record           scripted demos with camera images                    (libs/datasets:record)
7. train-act        LeRobot ACT from images + joint state                (backends/torch_lerobot:train)
8. eval-act         its sweep                                            (services/eval:sweep-torch_lerobot)
9. summary          one table and plot over every sweep, with links to their reports (this module)

The state-based policies are the ones that learn the task in minutes on a CPU; the vision ACT shows where
images stand at the same budget (see the README's learning figures for longer runs).
The torch and JAX stacks live in different Pants resolves, so one process cannot hold both: the quickstart
runs every stage as its own ``./pants run`` and the sweeps write their reports side by side. A stage whose
output is finished is skipped, so rerunning after an interruption resumes where it stopped; an output made
by another command (another ``--size``) or from inputs made again since is moved aside and made anew
(``stamps.py``).
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

from libs.errors import LabError
from services.quickstart.stamps import (
    Stamp,
    input_ids,
    new_made_id,
    read_stamp,
    stamp_path,
    why_stale,
    write_stamp,
)

#: Seed of the first demonstration; the sweeps use seeds 0, 1, ... (their default), far below it.
DEMO_FIRST_SEED = 100_000


class QuickstartError(LabError, RuntimeError):
    """A stage failed or the quickstart cannot start; the message names the fix."""


@dataclass(frozen=True)
class Sizes:
    """How much work each stage does. ``default`` fits in ~20 minutes on 2 CPU cores."""

    #: state-based demos (successes kept) and the executed-action noise they are recorded under
    state_episodes: int
    state_noise: float
    act_state_steps: int
    act_state_save_freq: int
    jax_state_config: str
    jax_state_steps: int
    jax_state_save_interval: int
    #: seeds per state checkpoint: enough for the paired comparison to separate checkpoints
    state_eval_episodes: int
    #: image demos and the vision ACT
    episodes: int
    act_steps: int
    act_save_freq: int
    eval_episodes: int
    whiskers: int
    image_size: str


SIZES: dict[str, Sizes] = {
    "default": Sizes(
        # 2.0° of correlated executed-action noise: the demos show recoveries (ACT-state 95/100 seeds
        # from these 200 demos at 4,000 steps, against 85/100 with 1.0°; README "What was measured").
        state_episodes=200,
        state_noise=2.0,
        act_state_steps=3000,
        act_state_save_freq=750,
        jax_state_config="so101_state",
        jax_state_steps=2000,
        jax_state_save_interval=1000,
        state_eval_episodes=30,
        # The vision ACT at a quickstart's budget shows where images stand, not a trained policy (the
        # README's vision figures come from longer runs).
        episodes=40,
        act_steps=600,
        act_save_freq=300,
        eval_episodes=10,
        whiskers=1,
        image_size="96x128",
    ),
    # What the integration tests run: every stage end to end at toy sizes.
    "tiny": Sizes(
        state_episodes=2,
        state_noise=0.0,
        act_state_steps=4,
        act_state_save_freq=2,
        jax_state_config="so101_state_test",
        jax_state_steps=4,
        jax_state_save_interval=2,
        state_eval_episodes=2,
        episodes=2,
        act_steps=4,
        act_save_freq=2,
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
    #: what the stage writes (a folder, or the summary's file); a stale one is moved aside, never deleted
    output: Path
    #: whether the stage's command continues an unfinished ``output`` (recorder, training, sweeps); one that
    #: refuses an existing folder has its unfinished output moved aside instead
    resumes: bool = True
    #: outputs of earlier stages that this one reads: when one of them is made again, this one is stale
    inputs: tuple[Path, ...] = ()
    #: what an existing output must have been made with to count as this stage's (default: ``argv``)
    fingerprint: tuple[str, ...] | None = None

    def command(self, pants: str = "./pants") -> list[str]:
        return [pants, "--no-pantsd", "run", self.target, "--", *self.argv]

    def shell_command(self) -> str:
        return " ".join(self.command())


def record_stage(
    name: str,
    data: Path,
    episodes: int,
    extra: tuple[str, ...],
    description: str,
    *,
    first_seed: int = DEMO_FIRST_SEED,
    fresh: bool = False,
) -> Stage:
    """A ``libs/datasets:record`` stage keeping successful episodes from ``first_seed`` on (``fresh``: an
    unfinished ``data`` is moved aside rather than continued). Also the learning-curve benchmark's pool
    recorder."""
    return Stage(
        name,
        description,
        "libs/datasets:record",
        "libs.datasets.record",
        (
            "--out",
            str(data),
            "--episodes",
            str(episodes),
            # Demonstrations are successful expert episodes on seeds the sweeps never use, so the
            # report measures generalisation to new layouts, not replay of the training set.
            "--seed",
            str(first_seed),
            "--keep",
            "success",
            *extra,
        ),
        data / "meta" / "info.json",
        output=data,
        resumes=not fresh,
    )


def _train_act(name: str, data: Path, run: Path, preset: str, steps: int, save_freq: int) -> Stage:
    # The train command decides its torch threads from the cores free when it starts (libs.compute_threads:
    # torch's default two measured 8 s/step beside a test run on 2 cores, ~0.3 s/step on one thread).
    batch = ("--batch-size", "32") if preset == "state" else ()
    argv = (
        *("--policy", "act", "--preset", preset, "--dataset", str(data), "--out", str(run)),
        *("--steps", str(steps), "--save-freq", str(save_freq), *batch),
    )
    return Stage(
        name,
        f"train LeRobot ACT ({preset} preset) for {steps} steps",
        "backends/torch_lerobot:train",
        "backends.torch_lerobot.train",
        # --resume: a killed training continues from its last checkpoint (a new --out simply starts)
        (*argv, "--resume"),
        run / "checkpoints" / f"{steps:06d}",
        output=run,
        inputs=(data,),
        fingerprint=argv,  # the same run as one stamped before the trainer had --resume
    )


def _sweep(
    name: str, backend: str, run: Path, out: Path, episodes: int, sizes: Sizes, workers: tuple[str, ...]
) -> Stage:
    return Stage(
        name,
        f"sweep the {run.name} checkpoints on {episodes} shared seeds with Ray",
        f"services/eval:sweep-{backend}",
        "services.eval.sweep",
        (
            "--policy",
            f"{backend}:{run}",
            "--episodes",
            str(episodes),
            "--whiskers",
            str(sizes.whiskers),
            "--out",
            str(out),
            *workers,
        ),
        out / "report.json",
        output=out,
        inputs=(run,),
    )


def _train_jax_state(data: Path, run: Path, sizes: Sizes) -> Stage:
    return Stage(
        "train-jax-state",
        f"train the JAX Pi0-style policy ({sizes.jax_state_config}) for {sizes.jax_state_steps} steps",
        "backends/jax_openpi:train",
        "backends.jax_openpi.train",
        (
            "--config",
            sizes.jax_state_config,
            "--dataset",
            str(data),
            "--out",
            str(run),
            "--steps",
            str(sizes.jax_state_steps),
            # the learning rate decays over exactly this run
            "--decay-steps",
            str(sizes.jax_state_steps),
            "--save-interval",
            str(sizes.jax_state_save_interval),
            "--compute-norm-stats",
        ),
        run / "checkpoints" / f"{sizes.jax_state_steps:06d}",
        output=run,
        inputs=(data,),
    )


def _state_stages(out: Path, sizes: Sizes, worker_args: tuple[str, ...]) -> list[Stage]:
    """Stages 1-5: state demos, then ACT and the JAX policy trained on them and swept."""
    state_data = out / "data_state"
    act_state_run = out / "runs" / "act-state"
    jax_state_run = out / "runs" / "jax-state"
    state_record_args = ("--environment-state", "--no-cameras", "--noise", str(sizes.state_noise))
    return [
        record_stage(
            "record-state",
            state_data,
            sizes.state_episodes,
            state_record_args,
            f"record {sizes.state_episodes} scripted demonstrations (object state, no cameras)",
        ),
        _train_act(
            "train-act-state",
            state_data,
            act_state_run,
            "state",
            sizes.act_state_steps,
            sizes.act_state_save_freq,
        ),
        _sweep(
            "eval-act-state",
            "torch_lerobot",
            act_state_run,
            out / "eval" / "act-state",
            sizes.state_eval_episodes,
            sizes,
            worker_args,
        ),
        _train_jax_state(state_data, jax_state_run, sizes),
        _sweep(
            "eval-jax-state",
            "jax_openpi",
            jax_state_run,
            out / "eval" / "jax-state",
            sizes.state_eval_episodes,
            sizes,
            worker_args,
        ),
    ]


def _image_stages(out: Path, sizes: Sizes, worker_args: tuple[str, ...]) -> list[Stage]:
    """Stages 6-8: camera demos, the vision ACT trained on them and its sweep."""
    data = out / "data"
    act_run = out / "runs" / "act"
    return [
        record_stage(
            "record",
            data,
            sizes.episodes,
            ("--image-size", sizes.image_size),
            f"record {sizes.episodes} scripted demonstrations (camera images)",
        ),
        _train_act("train-act", data, act_run, "cpu", sizes.act_steps, sizes.act_save_freq),
        _sweep(
            "eval-act",
            "torch_lerobot",
            act_run,
            out / "eval" / "act",
            sizes.eval_episodes,
            sizes,
            worker_args,
        ),
    ]


def _summary_stage(out: Path) -> Stage:
    return Stage(
        "summary",
        "one table over every sweep",
        "//:quickstart-summary",
        "services.quickstart.summary",
        ("--out", str(out)),
        out / "summary.md",
        output=out / "summary.md",
        inputs=tuple(out / "eval" / name for name in ("act-state", "jax-state", "act")),
    )


def plan_stages(out: Path, sizes: Sizes, workers: int | None = None) -> list[Stage]:
    worker_args = ("--workers", str(workers)) if workers else ()
    return [
        *_state_stages(out, sizes, worker_args),
        *_image_stages(out, sizes, worker_args),
        _summary_stage(out),
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
        fingerprint = list(stage.fingerprint if stage.fingerprint is not None else stage.argv)
        inputs_now = input_ids(stage.inputs)
        stamp = read_stamp(stage.output)
        finished = stage.done_marker.exists()
        # An unfinished output without a stamp was begun before stamps existed: treat it as this stage's.
        stale = why_stale(stamp, fingerprint, inputs_now) if (finished or stamp is not None) else None
        if finished and stale is None and stamp is not None and stamp.finished:
            print(f"{header} — already done ({stage.done_marker}), skipping", flush=True)
            timings.append((stage.name, 0.0, "skipped"))
            continue
        print(f"\n{header}\n      $ {stage.shell_command()}", flush=True)
        made_id = new_made_id()
        if stage.output.exists():
            if stale is not None:
                kept = _set_aside_with_stamp(stage.output, "stale")
                print(f"      its earlier output was {stale}: moved to {kept}", flush=True)
            elif not stage.resumes:
                # An interrupted run of a stage that needs a new directory: keep it, out of the way.
                kept = _set_aside_with_stamp(stage.output, "interrupted")
                print(f"      an unfinished earlier run was moved to {kept}", flush=True)
            else:
                made_id = stamp.made_id if stamp is not None else made_id
                print(f"      continuing the unfinished {stage.output}", flush=True)
        write_stamp(stage.output, Stamp(fingerprint, inputs_now, made_id, finished=False))
        stage_started = time.monotonic()
        completed = subprocess.run(stage.command(pants), cwd=buildroot, check=False)
        elapsed = time.monotonic() - stage_started
        if completed.returncode != 0:
            raise QuickstartError(
                f"stage {stage.name} failed (exit {completed.returncode}) after {_format_seconds(elapsed)}; "
                f"fix what it printed above, then rerun the quickstart (finished stages are skipped) "
                f"or only this stage: {stage.shell_command()}"
            )
        write_stamp(stage.output, Stamp(fingerprint, inputs_now, made_id, finished=True))
        timings.append((stage.name, elapsed, "ran"))
        print(
            f"      done in {_format_seconds(elapsed)} (total {_format_seconds(time.monotonic() - started)})",
            flush=True,
        )
    return timings


def _set_aside_with_stamp(output: Path, label: str) -> Path:
    """Moves an output aside together with its stamp, so the kept copy still says what made it."""
    kept = move_aside(output, label)
    if stamp_path(output).exists():
        stamp_path(output).rename(stamp_path(kept))
    return kept


def move_aside(directory: Path, label: str) -> Path:
    """Renames ``directory`` (or a file) to ``<name>.<label>-<n>`` beside it (nothing written is deleted)."""
    for number in range(1, 1000):
        target = directory.with_name(f"{directory.name}.{label}-{number}")
        if not target.exists():
            directory.rename(target)
            return target
    raise QuickstartError(f"too many {label} copies beside {directory}: delete the *.{label}-* folders")


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
        print(f"browse them: ./pants run services/report:serve -- {out} (or a sweep folder's report.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
