"""Seconds per episode of the ``--serial`` sweep command as a user runs it — a fresh process of the real
command on a small state-based Diffusion checkpoint, no thread variable set — with the thread count the
product decides (``libs/compute_threads``) against forced ``--threads 2`` and ``--threads 1``, with no burner
and beside a busy core (a CPU burner pinned to the last of the given cores). Issue 32: beside a training on
the other core, torch's default two threads ran this sweep at 9.5–75 s per episode, one thread at ~1.1 s.

    taskset -c 0,1 ./pants run benchmarks:threads -- --workdir /tmp/threads_bench --episodes 3 --rounds 3

The first run records scripted state demonstrations and trains the checkpoint into ``--workdir`` (a few
hundred steps at the ``state`` preset: success does not matter for speed, the same seeds run in every mode).
Each round runs the modes in turn, without then with the burner (episodes of ``--max-steps`` steps; a sweep
past ``--cap-s`` is stopped and counted from the episodes it stored, a lower bound marked ``*``). The table
gives medians over rounds of the seconds per episode (the episodes' own wall time, from the results store)
and of the whole command (start-up, policy load and input check included), the threads the command used and
the busy cores it saw (from the line it prints), and each mode's ratio to the product's decision in the same
scenario. The load average is printed with the table: another job on these cores shows in the busy cores
the command reports, and in the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import benchmarks  # noqa: F401  (picks the headless GL backend before mujoco is imported)
from libs.compute_threads import ALL_VARIABLES
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from services.eval import sweep as sweep_command

#: (label, the flags that mode adds to the command)
MODES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("decided", ()),
    ("--threads 2", ("--threads", "2")),
    ("--threads 1", ("--threads", "1")),
)
SCENARIOS = ("no burner", "burner on a core")
THREADS_LINE = re.compile(r"^threads: (\d+) per model", re.MULTILINE)
BUSY_SEEN = re.compile(r"(\d+) busy with other work")


@dataclass
class Run:
    episode_s: float
    command_s: float
    threads: int
    busy: str
    #: stopped at --cap-s (SIGTERM: the sweep keeps what it stored) before its episodes were all played
    cut: bool = False


def train_checkpoint(workdir: Path, demos: int, steps: int) -> Path:
    """Scripted state demonstrations and a state-preset Diffusion trained on them, once per workdir."""
    from backends.torch_lerobot.checkpoints import list_checkpoints
    from backends.torch_lerobot.train import train_policy
    from libs.datasets.record import record_scripted_dataset, scene_from_args

    run = workdir / "diffusion_state"
    if run.exists() and list_checkpoints(run):
        return list_checkpoints(run)[-1]
    data = workdir / "demos_state"
    if not (data / "meta" / "info.json").exists():
        scene = scene_from_args(None, None, False, environment_state=True, no_cameras=True)
        record_scripted_dataset(data, episodes=demos, seed=10000, scene=scene, keep="success", progress=False)
    return train_policy("diffusion", data, run, steps=steps, preset="state", batch_size=64, threads=1)[-1]


def user_environment() -> dict[str, str]:
    """This interpreter's environment and import path, without any thread variable: a user's shell."""
    environment = {key: value for key, value in os.environ.items() if key not in ALL_VARIABLES}
    return {**environment, "PYTHONPATH": os.pathsep.join(sys.path)}


@contextlib.contextmanager
def busy_core(busy: bool) -> Iterator[int | None]:
    """A process spinning on the last of this process's cores while the block runs (None: nothing)."""
    if not busy:
        yield None
        return
    core = max(os.sched_getaffinity(0))
    spin = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True: pass"
    burner = subprocess.Popen([sys.executable, "-c", spin])
    time.sleep(1.0)  # running on its core before the command looks at the cores
    try:
        yield core
    finally:
        burner.kill()
        burner.wait()


def run_sweep(checkpoint: Path, out: Path, sweep: argparse.Namespace, flags: tuple[str, ...]) -> Run:
    """The sweep command, ``--serial``, in a fresh process on ``checkpoint``: its timings and threads. A run
    past ``--cap-s`` is stopped as Ctrl-C stops it; its stored episodes still give the seconds per episode
    (none stored: the cap's time counts as one episode, a lower bound)."""
    command = [
        sys.executable, "-m", sweep_command.__name__, "--policy", f"torch_lerobot:{checkpoint}",
        "--episodes", str(sweep.episodes), "--max-steps", str(sweep.max_steps), "--serial", "--no-progress",
        "--out", str(out), *flags,
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=user_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        stdout, stderr = process.communicate(timeout=sweep.cap_s)
        cut = False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate()
        cut = True
    finally:
        if process.poll() is None:
            process.kill()
    command_s = time.perf_counter() - started
    printed = stdout.decode(errors="replace")
    if process.returncode != 0 and not cut:
        raise SystemExit(f"the sweep failed ({process.returncode}): {stderr.decode()[-2000:]}")
    match = THREADS_LINE.search(printed)
    if match is None:
        raise SystemExit(f"the sweep printed no threads line: {printed[:500]}")
    walls = []
    if (out / STORE_FILE_NAME).exists():
        with ResultsStore(out / STORE_FILE_NAME) as store:
            walls = [record.wall_time_s for record in store.records()]
    busy = BUSY_SEEN.search(printed)
    episode_s = statistics.fmean(walls) if walls else command_s
    return Run(episode_s, command_s, int(match.group(1)), busy.group(1) if busy else "-", cut)


def measure(checkpoint: Path, workdir: Path, sweep: argparse.Namespace) -> dict[tuple[str, str], list[Run]]:
    """Every (scenario, mode) once per round, modes in turn within each scenario of a round."""
    runs: dict[tuple[str, str], list[Run]] = {}
    for round_number in range(sweep.rounds):
        for scenario_number, scenario in enumerate(sweep.scenarios):
            with busy_core(scenario != "no burner"):
                for mode_number, (label, flags) in enumerate(sweep.modes):
                    out = (
                        workdir
                        / "sweeps"
                        / f"round{round_number}-scenario{scenario_number}-mode{mode_number}"
                    )
                    run = run_sweep(checkpoint, out, sweep, flags)
                    runs.setdefault((scenario, label), []).append(run)
                    print(
                        f"round {round_number + 1} {scenario:>18} {label:>12}: {run.episode_s:6.2f} "
                        f"s/episode, command {run.command_s:6.1f} s, {run.threads} thread(s), busy seen "
                        f"{run.busy}{' (cut at the cap)' if run.cut else ''}",
                        flush=True,
                    )
    return runs


def print_table(runs: dict[tuple[str, str], list[Run]], sweep: argparse.Namespace) -> None:
    print(
        f"\nserial sweep of a state Diffusion checkpoint, {sweep.episodes} episodes of {sweep.max_steps} "
        f"steps, median of {sweep.rounds} rounds (* = a round stopped at the {sweep.cap_s:.0f} s cap: "
        "a lower bound)"
    )
    print("| scenario | mode | threads used | busy cores seen | s/episode | ratio to decided | command s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for scenario in sweep.scenarios:
        decided = statistics.median(run.episode_s for run in runs[(scenario, "decided")])
        for label, _ in sweep.modes:
            rows = runs[(scenario, label)]
            episode_s = statistics.median(run.episode_s for run in rows)
            threads = "/".join(sorted({str(run.threads) for run in rows}))
            busy = "/".join(sorted({run.busy for run in rows}))
            command_s = statistics.median(run.command_s for run in rows)
            cut = "*" * sum(run.cut for run in rows)
            print(
                f"| {scenario} | {label} | {threads} | {busy} | {episode_s:.2f}{cut} | "
                f"{episode_s / decided:.2f}× | {command_s:.1f} |"
            )


def parse_modes(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``--threads 1,decided`` → those modes in that order (the ratios need ``decided`` among them)."""
    flags_of = dict(MODES)
    names = [name.strip() for name in text.split(",")]
    if "decided" not in names or any(name not in flags_of for name in names):
        raise argparse.ArgumentTypeError(f"--modes {text!r}: name decided and any of {', '.join(flags_of)}")
    return tuple((name, flags_of[name]) for name in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/threads_bench"))
    parser.add_argument("--episodes", type=int, default=3, help="episodes per sweep (seeds 0..N-1)")
    parser.add_argument("--max-steps", type=int, default=100, help="episode step limit of each sweep")
    parser.add_argument(
        "--cap-s", type=float, default=180.0, help="a sweep still running after this is stopped (SIGTERM)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--demos", type=int, default=20, help="scripted demonstrations to train on")
    parser.add_argument("--steps", type=int, default=300, help="training steps of the checkpoint")
    parser.add_argument(
        "--modes",
        type=parse_modes,
        default=MODES,
        help="the modes to run, comma-separated, in this order (default: decided,--threads 2,--threads 1)",
    )
    parser.add_argument("--no-burner-only", action="store_true", help="skip the scenario with the burner")
    args = parser.parse_args(argv)
    args.scenarios = SCENARIOS[:1] if args.no_burner_only else SCENARIOS
    # A SIGTERM to the benchmark stops its burner and sweep too (their `finally`s run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    checkpoint = train_checkpoint(args.workdir, args.demos, args.steps)
    shutil.rmtree(args.workdir / "sweeps", ignore_errors=True)  # every sweep starts from an empty folder
    cores = sorted(os.sched_getaffinity(0))
    print(f"checkpoint {checkpoint}; cores given {cores}; the burner spins on core {max(cores)}", flush=True)
    load_before = os.getloadavg()
    runs = measure(checkpoint, args.workdir, args)
    load_after = os.getloadavg()
    print_table(runs, args)
    print(
        f"load average before {', '.join(f'{v:.2f}' for v in load_before)}, after "
        f"{', '.join(f'{v:.2f}' for v in load_after)} on {os.cpu_count()} cores (a machine shared with other "
        "engineers' jobs: they show in 'busy cores seen' and in the figures)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
