"""Training steps per second: LeRobot's own ``lerobot-train`` against this lab's train command, on the same
dataset and the same configuration, each as a user runs it, and each row's limit (the model's forward,
backward and optimizer step alone, on batches already in memory) — in turn within each round, so the ratios
are paired; medians over rounds.

    taskset -c 1 ./pants run benchmarks:train_speed -- --workdir /tmp/train_speed --rounds 3

The first run records two datasets into ``--workdir`` at the bench's default image size (two 96 × 128
cameras): ``vision`` (cameras and joint state) and ``state`` (joint and object state, no cameras).

- ``lerobot-train``: ``lerobot.scripts.lerobot_train.main`` (the ``lerobot-train`` console script) in a
  subprocess, with ``--config_path`` naming a ``train_config.json`` that holds the train command's own
  configuration (policy sizes, optimizer, schedule, batch size, seed) and LeRobot's defaults for everything
  a user does not set (``num_workers`` 4, prefetch 4, persistent workers, its default video backend, torch's
  default threads). The launcher first imports ``scratch_backbones`` so that ``torchvision.models`` knows the
  cpu preset's GroupNorm ResNet (LeRobot builds its encoder by that name); nothing else of this lab runs.
- ours: ``python -m backends.torch_lerobot.train`` with the flags a user types and its defaults.
- limit: the same policy, preprocessor and optimizer (LeRobot's factories) stepped in-process on a few
  batches prepared before the clock starts, at the better of 1 thread and one per core of the affinity,
  timed as its fastest run of 5 consecutive steps (on a shared machine the least disturbed pace).

Steps per second come from the wall-clock times at which the two commands print LeRobot's log lines (the
same lines: our command drives LeRobot's loop), from the first line after ``--warmup`` steps to the last, so
start-up (imports, the frame cache's decoding) is left out and reported on its own. The loss column is
LeRobot's log-window mean at the same steps from both. Each round uses its own seed (1000 + round) for both
commands: the spread of lerobot-train's last loss over rounds is the seed noise the two curves are compared
against. Peak memory is the peak of the summed PSS (proportional set size: shared pages split) of the
command's process tree, polled every 0.5 s. The load average is printed with the table: the machine is
shared, the figures are only as quiet as it was.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchmarks  # noqa: F401  (picks the headless GL backend before mujoco is imported)


@dataclass(frozen=True)
class Row:
    """One training configuration: the train command's policy, preset, dataset and batch size."""

    policy: str
    preset: str
    dataset: str
    batch_size: int
    label: str
    tiny_backbone: bool = False


ROWS: dict[str, Row] = {
    "act_state": Row("act", "state", "state", 32, "ACT, state (preset state)"),
    "act_vision": Row("act", "cpu", "vision", 16, "ACT, vision 96×128 (preset cpu, GN ResNet w16)"),
    "diffusion_state": Row("diffusion", "state", "state", 64, "Diffusion, state (preset state)"),
    "diffusion_vision": Row("diffusion", "cpu", "vision", 16, "Diffusion, vision 96×128 (preset cpu)"),
    "smolvla": Row("smolvla", "cpu", "vision", 8, "SmolVLA, tiny backbone, vision 96×128", True),
}
COMMANDS = ("lerobot_train", "ours", "limit")
#: ``INFO ... step:120 smpl:... loss:0.532 ...``: LeRobot's log line (``MetricsTracker``'s str).
_LOG_LINE = re.compile(r"\bstep:(\d+(?:\.\d+)?[KMB]?)\b.*?\bloss:([0-9.eE+-]+)")
#: the same line's window means of the update's and the data's seconds per step (LeRobot's own meters)
_STEP_SECONDS = re.compile(r"\bupdt_s:([0-9.]+) data_s:([0-9.]+)")
_LAUNCH_LEROBOT_TRAIN = (
    "import sys, backends.torch_lerobot.scratch_backbones; "
    "from lerobot.scripts.lerobot_train import main; sys.argv[0] = 'lerobot-train'; sys.exit(main())"
)


@dataclass
class Run:
    """One command's run: log lines as (seconds since launch, step, loss), peak PSS, total seconds, and
    LeRobot's own seconds per step (update + data) of each log window, by the window's last step."""

    lines: list[tuple[float, int, float]] = field(default_factory=list)
    window_seconds: dict[int, float] = field(default_factory=dict)
    peak_pss_bytes: int = 0
    seconds: float = 0.0

    def steps_per_second(self, warmup: int) -> float:
        after = [line for line in self.lines if line[1] >= warmup]
        if len(after) < 2:
            raise RuntimeError(f"too few log lines after step {warmup}: {self.lines}")
        (start, first, _), (end, last, _) = after[0], after[-1]
        return (last - first) / (end - start)

    def startup_seconds(self) -> float:
        """Launch to the first log line, less the steps before it at the run's later pace."""
        (first_time, first_step, _), (last_time, last_step, _) = self.lines[0], self.lines[-1]
        pace = (last_time - first_time) / max(last_step - first_step, 1)
        return first_time - first_step * pace

    def in_loop_steps_per_second(self, from_step: int) -> float:
        """1 / the mean of LeRobot's update + data seconds over the windows ending after ``from_step``: the
        loop's steady pace by its own clock (what start-up work still running in the background cost it
        included, what the log line and the checkpoint cost left out)."""
        windows = [seconds for step, seconds in self.window_seconds.items() if step > from_step]
        return 1.0 / statistics.mean(windows) if windows else float("nan")

    def losses(self) -> dict[int, float]:
        return {step: loss for _, step, loss in self.lines}


def _big_number(text: str) -> int:
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}.get(text[-1], 1)
    return int(round(float(text.rstrip("KMB")) * scale))


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from ``/proc/PID/task/*/children``)."""
    tree, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        tree.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                frontier += [int(child) for child in children.read_text().split()]
            except OSError:
                continue
    return tree


def _tree_pss_bytes(pid: int) -> int:
    """Summed PSS (``/proc/PID/smaps_rollup``) of ``pid`` and its descendants (0 once it is gone)."""
    total = 0
    for process in _process_tree(pid):
        try:
            rollup = Path(f"/proc/{process}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def run_command(argv: list[str], log_path: Path) -> Run:
    """Run ``argv``, timestamping LeRobot's log lines as they arrive and polling its tree's PSS."""
    environment = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TQDM_DISABLE": "1",  # progress bars off (carriage returns), in both commands alike
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
    }
    run = Run()
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment, bufsize=1
    )
    done = threading.Event()

    def poll_memory() -> None:
        while not done.is_set():
            run.peak_pss_bytes = max(run.peak_pss_bytes, _tree_pss_bytes(process.pid))
            done.wait(0.5)

    poller = threading.Thread(target=poll_memory, daemon=True)
    poller.start()
    assert process.stdout is not None
    with log_path.open("w") as log:
        for line in process.stdout:
            now = time.perf_counter() - started
            log.write(line)
            match = _LOG_LINE.search(line)
            if match:
                step = _big_number(match.group(1))
                run.lines.append((now, step, float(match.group(2))))
                seconds = _STEP_SECONDS.search(line)
                if seconds:
                    run.window_seconds[step] = float(seconds.group(1)) + float(seconds.group(2))
    code = process.wait()
    run.seconds = time.perf_counter() - started
    done.set()
    poller.join()
    if code != 0:
        raise RuntimeError(f"{argv[:4]} exited with {code}: see {log_path}")
    return run


def record_datasets(workdir: Path, vision_episodes: int, state_episodes: int) -> dict[str, Path]:
    """The ``vision`` and ``state`` datasets (scripted expert, default image size), recorded once."""
    from libs.datasets.record import record_scripted_dataset
    from libs.sim.scene_config import SceneConfig

    datasets = {"vision": workdir / "vision", "state": workdir / "state"}
    scenes = {
        "vision": SceneConfig(),
        "state": dataclasses.replace(SceneConfig().with_cameras([]), environment_state=True),
    }
    episodes = {"vision": vision_episodes, "state": state_episodes}
    for name, root in datasets.items():
        if not (root / "meta" / "info.json").is_file():
            record_scripted_dataset(root, episodes=episodes[name], seed=0, scene=scenes[name], progress=True)
    return datasets


#: Keys of ``train_config.json`` left out so that lerobot-train takes its own defaults for them.
_LEROBOT_DEFAULTS_TOP = (
    "num_workers",
    "prefetch_factor",
    "persistent_workers",
    "dataloader_multiprocessing_context",
)
_LEROBOT_DEFAULTS_DATASET = ("video_backend",)


def _train_config(row: Row, dataset: Path, workdir: Path, steps: int, log_freq: int) -> Any:
    """The train command's ``TrainConfig`` for ``row`` (what ``ours_argv`` asks for on the command line)."""
    from backends.torch_lerobot.train import TrainConfig

    return TrainConfig(
        policy=row.policy,
        dataset=dataset,
        steps=steps,
        out=workdir / "unused",
        preset=row.preset,
        batch_size=row.batch_size,
        tiny_backbone_dir=workdir / "tiny_backbone" if row.tiny_backbone else None,
        log_freq=log_freq,
    )


def lerobot_config_file(row: Row, dataset: Path, workdir: Path, steps: int, log_freq: int) -> Path:
    """``train_config.json`` holding the train command's configuration for ``row``, less the loader and
    decoder settings (LeRobot's defaults apply to those)."""
    from backends.torch_lerobot import train as ours
    from backends.torch_lerobot.backbones import configure_backbone

    config = _train_config(row, dataset, workdir, steps, log_freq)
    backbone_overrides, _ = configure_backbone(
        row.policy, tiny_backbone_dir=config.tiny_backbone_dir, tiny_scale=config.tiny_backbone_scale
    )
    pipeline = ours._pipeline_config(config, dataset, workdir / "unused", backbone_overrides)
    directory = workdir / "lerobot_configs" / f"{row.policy}_{row.preset}_{row.dataset}"
    directory.mkdir(parents=True, exist_ok=True)
    pipeline._save_pretrained(directory)
    path = directory / "train_config.json"
    saved = json.loads(path.read_text())
    for key in _LEROBOT_DEFAULTS_TOP:
        saved.pop(key, None)
    for key in _LEROBOT_DEFAULTS_DATASET:
        saved["dataset"].pop(key, None)
    saved["output_dir"] = None
    path.write_text(json.dumps(saved, indent=2))
    return path


def lerobot_argv(config_file: Path, out: Path, seed: int) -> list[str]:
    return [
        sys.executable,
        "-c",
        _LAUNCH_LEROBOT_TRAIN,
        f"--config_path={config_file}",
        f"--output_dir={out}",
        f"--seed={seed}",
    ]


def ours_argv(
    row: Row, dataset: Path, workdir: Path, out: Path, steps: int, log_freq: int, seed: int
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "backends.torch_lerobot.train",
        "--policy",
        row.policy,
        "--preset",
        row.preset,
    ]
    argv += ["--dataset", str(dataset), "--steps", str(steps), "--out", str(out)]
    argv += ["--batch-size", str(row.batch_size), "--log-freq", str(log_freq), "--seed", str(seed)]
    if row.tiny_backbone:
        argv += ["--tiny-backbone", str(workdir / "tiny_backbone")]
    return argv


def _limit_parts(row: Row, dataset: Path, workdir: Path, seed: int) -> tuple[Any, Any, Any, list[Any], float]:
    """The policy, optimizer, scheduler, a few preprocessed batches and the gradient clip, built by
    LeRobot's factories from the train command's configuration (with its preprocessor steps), as its loop
    builds them."""
    import torch
    from lerobot.datasets.factory import make_dataset
    from lerobot.optim.factory import make_optimizer_and_scheduler
    from lerobot.policies.factory import make_policy, make_pre_post_processors
    from lerobot.utils.random_utils import set_seed

    from backends.torch_lerobot import train as ours
    from backends.torch_lerobot.backbones import configure_backbone
    from backends.torch_lerobot.depth_channels import add_depth_step
    from backends.torch_lerobot.environment_state import add_environment_state_step
    from backends.torch_lerobot.frame_cache import InMemoryFrames

    config = _train_config(row, dataset, workdir, steps=1000, log_freq=1000)
    overrides, _ = configure_backbone(row.policy, tiny_backbone_dir=config.tiny_backbone_dir)
    pipeline = ours._pipeline_config(config, dataset, workdir / f"limit_{time.time_ns()}", overrides)
    pipeline.seed = seed
    with ours._lerobot_cli_free():
        pipeline.validate()
    set_seed(seed)
    train_set = make_dataset(pipeline)
    policy = make_policy(cfg=pipeline.policy, ds_meta=train_set.meta)
    preprocessor, _ = make_pre_post_processors(policy_cfg=pipeline.policy, dataset_stats=train_set.meta.stats)
    add_depth_step(preprocessor, pipeline.policy.input_features)
    add_environment_state_step(preprocessor, pipeline.policy.type, pipeline.policy.input_features)
    optimizer, scheduler = make_optimizer_and_scheduler(pipeline, policy)
    loader = torch.utils.data.DataLoader(InMemoryFrames(train_set), batch_size=row.batch_size, shuffle=True)
    batches = []
    for batch, _ in zip(loader, range(4), strict=False):
        batches.append(preprocessor(batch))
    policy.train()
    return policy, optimizer, scheduler, batches, pipeline.optimizer.grad_clip_norm


#: Steps per timed run of the limit.
_LIMIT_CHUNK = 5


def limit_steps_per_second(row: Row, dataset: Path, workdir: Path, seed: int, steps: int) -> dict[str, Any]:
    """Forward + backward + gradient clipping + optimizer and scheduler step on batches already in memory,
    at 1 thread and at one thread per core of this process's affinity: the faster, each at its fastest run
    of ``_LIMIT_CHUNK`` consecutive steps."""
    import torch

    policy, optimizer, scheduler, batches, clip = _limit_parts(row, dataset, workdir, seed)

    def step(batch: Any) -> None:
        loss, _ = policy.forward(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad()
        if scheduler is not None:
            scheduler.step()

    rates = {}
    for threads in sorted({1, len(os.sched_getaffinity(0))}):
        torch.set_num_threads(threads)
        for index in range(3):
            step(batches[index % len(batches)])
        # The fastest run of _LIMIT_CHUNK steps: on a shared core a limit is the pace when least disturbed
        chunk_seconds = []
        for chunk in range(max(steps // _LIMIT_CHUNK, 1)):
            started = time.perf_counter()
            for index in range(chunk * _LIMIT_CHUNK, (chunk + 1) * _LIMIT_CHUNK):
                step(batches[index % len(batches)])
            chunk_seconds.append(time.perf_counter() - started)
        rates[threads] = _LIMIT_CHUNK / min(chunk_seconds)
    best = max(rates, key=rates.__getitem__)
    return {"steps_per_second": rates[best], "threads": best, "rates": rates}


def run_limit(
    row_name: str, dataset: Path, args: argparse.Namespace, seed: int, log_path: Path
) -> dict[str, Any]:
    """``limit_steps_per_second`` in a fresh process (under the same affinity), its JSON read back."""
    argv = [sys.executable, "-m", "benchmarks.train_speed", "--limit-worker", row_name, "--workdir"]
    argv += [str(args.workdir), "--limit-steps", str(args.limit_steps), "--seed", str(seed)]
    environment = {**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(argv, capture_output=True, text=True, env=environment)
    log_path.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"the limit of {row_name} failed: see {log_path}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(
    args: argparse.Namespace, datasets: dict[str, Path], rows: list[str], after_round: Any
) -> dict[tuple[str, str], list[Any]]:
    """Every (row, command) once per round, the commands in turn within a round; ``after_round(results)``
    after each round."""
    results: dict[tuple[str, str], list[Any]] = {}
    logs = args.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for round_index in range(args.rounds):
        seed = 1000 + round_index
        for name in rows:
            row, dataset = ROWS[name], datasets[ROWS[name].dataset]
            config_file = lerobot_config_file(row, dataset, args.workdir, args.steps, args.log_freq)
            for command in args.commands:
                tag = f"{name}_{command}_{round_index}_{time.time_ns()}"
                out = args.workdir / "runs" / tag
                if command == "limit":
                    value: Any = run_limit(name, dataset, args, seed, logs / f"{tag}.log")
                    said = f"{value['steps_per_second']:.2f} steps/s ({value['threads']} threads)"
                else:
                    argv = (
                        lerobot_argv(config_file, out, seed)
                        if command == "lerobot_train"
                        else (ours_argv(row, dataset, args.workdir, out, args.steps, args.log_freq, seed))
                    )
                    value = run_command(argv, logs / f"{tag}.log")
                    said = (
                        f"{value.steps_per_second(args.warmup):.2f} steps/s, start-up "
                        f"{value.startup_seconds():.1f} s, peak PSS {value.peak_pss_bytes / 1e9:.2f} GB"
                    )
                results.setdefault((name, command), []).append(value)
                print(f"round {round_index + 1}/{args.rounds} {name:16s} {command:13s} {said}", flush=True)
        after_round(results)
    return results


def _rate(results: dict[tuple[str, str], list[Any]], name: str, command: str, warmup: int) -> list[float]:
    values = results.get((name, command), [])
    if command == "limit":
        return [value["steps_per_second"] for value in values]
    return [value.steps_per_second(warmup) for value in values]


def _paired(numerator: list[float], denominator: list[float]) -> str:
    if not numerator or not denominator:
        return "–"
    return f"{statistics.median(a / b for a, b in zip(numerator, denominator, strict=True)):.2f}"


def _median_or_dash(values: list[float], form: str) -> str:
    return format(statistics.median(values), form) if values else "–"


def _pair(values: dict[str, list[float]], form: str) -> str:
    """``lerobot-train's median / ours``."""
    return f"{_median_or_dash(values['lerobot_train'], form)} / {_median_or_dash(values['ours'], form)}"


def speed_table(
    results: dict[tuple[str, str], list[Any]], rows: list[str], warmup: int, steady_from: int
) -> list[list[str]]:
    """One line per row: steps/s of each command, the paired ratios, the in-loop pace after
    ``steady_from`` steps with its ratio, start-up and peak memory."""
    lines = []
    for name in rows:
        lerobot, ours, limit = (_rate(results, name, command, warmup) for command in COMMANDS)
        threads = sorted({value["threads"] for value in results.get((name, "limit"), [])})
        runs = {command: results.get((name, command), []) for command in ("lerobot_train", "ours")}
        startup = {c: [run.startup_seconds() for run in r] for c, r in runs.items()}
        memory = {c: [run.peak_pss_bytes / 1e9 for run in r] for c, r in runs.items()}
        steady = {c: [run.in_loop_steps_per_second(steady_from) for run in r] for c, r in runs.items()}
        lines.append(
            [
                ROWS[name].label,
                str(ROWS[name].batch_size),
                _median_or_dash(lerobot, ".2f"),
                _median_or_dash(ours, ".2f"),
                _paired(ours, lerobot),
                _median_or_dash(limit, ".2f") + (f" ({','.join(map(str, threads))} thr)" if threads else ""),
                _paired(ours, limit),
                _paired(lerobot, limit),
                _pair(steady, ".2f"),
                _paired(steady["ours"], steady["lerobot_train"]),
                _pair(startup, ".0f"),
                _pair(memory, ".2f"),
            ]
        )
    return lines


SPEED_COLUMNS = (
    "row",
    "batch",
    "lerobot-train steps/s",
    "ours steps/s",
    "ours ÷ lerobot-train",
    "limit steps/s",
    "ours ÷ limit",
    "lerobot-train ÷ limit",
    "in-loop steps/s, 2nd half (L / O)",
    "in-loop ours ÷ L",
    "start-up s (L / O)",
    "peak PSS GB (L / O)",
)


def loss_table(results: dict[tuple[str, str], list[Any]], rows: list[str], points: int) -> list[list[str]]:
    """Per row, at up to ``points`` logged steps: each command's log-window loss, median (min–max) over
    rounds (one seed each)."""
    lines = []
    for name in rows:
        curves = {c: [run.losses() for run in results.get((name, c), [])] for c in ("lerobot_train", "ours")}
        if not curves["lerobot_train"] or not curves["ours"]:
            continue
        shared = sorted(set.intersection(*(set(curve) for runs in curves.values() for curve in runs)))
        chosen = sorted({shared[round(i * (len(shared) - 1) / max(points - 1, 1))] for i in range(points)})
        for step in chosen:
            cells = []
            for runs in curves.values():
                values = [curve[step] for curve in runs]
                cells.append(f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})")
            lines.append([ROWS[name].label, str(step), *cells])
    return lines


LOSS_COLUMNS = (
    "row",
    "step",
    "lerobot-train loss, median (min–max over seeds)",
    "ours loss, median (min–max)",
)


def print_markdown(columns: tuple[str, ...], lines: list[list[str]]) -> None:
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for line in lines:
        print("| " + " | ".join(line) + " |")


def report(
    args: argparse.Namespace,
    rows: list[str],
    results: dict[tuple[str, str], list[Any]],
    load_before: tuple[float, float, float],
) -> None:
    """Both tables and the load average, for the rounds done so far."""
    load_after = os.getloadavg()
    cores = sorted(os.sched_getaffinity(0))
    rounds = max(len(values) for values in results.values())
    print(
        f"\nTraining steps per second, {args.steps} steps per run, {rounds} rounds (seeds 1000…), "
        f"median; ratios are medians of per-round ratios; cores {cores}"
    )
    print_markdown(SPEED_COLUMNS, speed_table(results, rows, args.warmup, args.steps // 2))
    print(f"\nLoss (LeRobot's log-window mean over {args.log_freq} steps) at the same steps")
    print_markdown(LOSS_COLUMNS, loss_table(results, rows, args.loss_points))
    print(
        f"\nload average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"now: {', '.join(f'{v:.2f}' for v in load_after)}; machine shared with other engineers, "
        f"{os.cpu_count()} cores, this run pinned to {cores}",
        flush=True,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/so101_train_speed"))
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    parser.add_argument("--commands", default=",".join(COMMANDS), type=lambda text: text.split(","))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200, help="steps per training run")
    parser.add_argument("--log-freq", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=20, help="steps left out of steps/s")
    parser.add_argument("--limit-steps", type=int, default=30)
    parser.add_argument("--loss-points", type=int, default=5, help="logged steps shown per row")
    parser.add_argument("--vision-episodes", type=int, default=20)
    parser.add_argument("--state-episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--limit-worker", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.workdir = args.workdir.expanduser().resolve()
    if args.limit_worker is not None:
        row = ROWS[args.limit_worker]
        dataset = args.workdir / row.dataset
        print(json.dumps(limit_steps_per_second(row, dataset, args.workdir, args.seed, args.limit_steps)))
        return 0
    rows = [name for name in args.rows.split(",") if name]
    unknown = [name for name in rows if name not in ROWS] + [c for c in args.commands if c not in COMMANDS]
    if unknown:
        parser.error(f"unknown {unknown}: rows are {list(ROWS)}, commands {list(COMMANDS)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    datasets = record_datasets(args.workdir, args.vision_episodes, args.state_episodes)
    load_before = os.getloadavg()
    measure(args, datasets, rows, lambda results: report(args, rows, results, load_before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
