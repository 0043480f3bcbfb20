"""Train the object-state estimator on a dataset's camera frames and their simulator labels.

    ./pants run backends/torch_lerobot:train-estimator -- --dataset D --out EST --steps 3000

The dataset needs cameras and ``observation.environment_state`` (record with ``--environment-state``): each
frame's block pose and bowl position are the labels. The last ``--validation-fraction`` of the episodes is
held out; the printed table gives the estimate's errors on them (block and bowl position in millimetres,
yaw modulo 90° in degrees), and ``EST/estimator.json`` keeps them with the network's sizes. Give ``EST`` to
``backends/torch_lerobot:train --object-state-estimator EST`` and the policy reads the object state from the
cameras (``object_state_estimator.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from backends.torch_lerobot.frame_cache import InMemoryFrames
from backends.torch_lerobot.object_state_estimator import (
    EstimatorConfig,
    ObjectStateNet,
    targets_from_environment_state,
    yaw_error_degrees,
)
from libs.compute_threads import add_threads_flag, decide_and_apply
from libs.errors import LabError, one_line_errors

ENV_KEY = "observation.environment_state"
STATE_KEY = "observation.state"
WEIGHTS_FILE = "estimator.safetensors"
CONFIG_FILE = "estimator.json"


class EstimatorError(LabError, RuntimeError):
    """The estimator cannot be trained or loaded; the message names the problem and the fix."""


@dataclass(frozen=True)
class EstimatorErrors:
    """Held-out errors of the estimate (medians and 90th percentiles)."""

    frames: int
    block_xy_mm_median: float
    block_xy_mm_p90: float
    block_z_mm_median: float
    yaw_deg_median: float
    bowl_xy_mm_median: float

    def table(self) -> str:
        rows = [
            ("held-out frames", f"{self.frames}"),
            (
                "block x-y error (median / p90)",
                f"{self.block_xy_mm_median:.1f} / {self.block_xy_mm_p90:.1f} mm",
            ),
            ("block height error (median)", f"{self.block_z_mm_median:.1f} mm"),
            ("block yaw error mod 90° (median)", f"{self.yaw_deg_median:.1f}°"),
            ("bowl x-y error (median)", f"{self.bowl_xy_mm_median:.1f} mm"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


@dataclass
class LabelledFrames:
    """Every frame of the dataset's cameras (uint8) with its object state and episode."""

    camera_keys: list[str]
    images: list[torch.Tensor]
    state: torch.Tensor
    environment_state: torch.Tensor
    episode_index: torch.Tensor


def load_labelled_frames(dataset: Path) -> LabelledFrames:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    info = dataset / "meta" / "info.json"
    if not info.is_file():
        raise EstimatorError(f"{dataset} is not a LeRobot v3 dataset (no meta/info.json): pass its root")
    features = json.loads(info.read_text()).get("features", {})
    if ENV_KEY not in features:
        raise EstimatorError(f"{dataset} has no {ENV_KEY} to learn from: record it with --environment-state")
    reader = LeRobotDataset(f"local/{dataset.name}", root=dataset, video_backend="pyav")
    if not list(reader.meta.camera_keys):
        raise EstimatorError(f"{dataset} has no cameras: record it with cameras (drop --no-cameras)")
    cached = InMemoryFrames(reader, progress=tqdm)
    keys = sorted(reader.meta.camera_keys)
    return LabelledFrames(
        camera_keys=keys,
        images=[cached.frames(key) for key in keys],
        state=cached.column(STATE_KEY).float(),
        environment_state=cached.column(ENV_KEY).float(),
        episode_index=cached.column("episode_index").long(),
    )


def _split(frames: LabelledFrames, validation_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    episodes = torch.unique(frames.episode_index)
    held_out = max(1, int(round(len(episodes) * validation_fraction))) if len(episodes) > 1 else 0
    validation_episodes = episodes[len(episodes) - held_out :]
    is_validation = torch.isin(frames.episode_index, validation_episodes)
    train = torch.nonzero(~is_validation).squeeze(1)
    validation = torch.nonzero(is_validation).squeeze(1)
    return train, validation if len(validation) else train


def _images(frames: LabelledFrames, rows: torch.Tensor) -> list[torch.Tensor]:
    return [camera[rows].float() / 255.0 for camera in frames.images]


@torch.no_grad()
def measure_errors(net: ObjectStateNet, frames: LabelledFrames, rows: torch.Tensor) -> EstimatorErrors:
    net.eval()
    estimates = torch.cat(
        [net.estimate(_images(frames, chunk), frames.state[chunk]) for chunk in rows.split(256)]
    )
    true = frames.environment_state[rows]
    block_xy = torch.linalg.norm(estimates[:, :2] - true[:, :2], dim=-1) * 1000
    bowl_xy = torch.linalg.norm(estimates[:, 7:9] - true[:, 7:9], dim=-1) * 1000
    return EstimatorErrors(
        frames=len(rows),
        block_xy_mm_median=float(block_xy.median()),
        block_xy_mm_p90=float(torch.quantile(block_xy, 0.9)),
        block_z_mm_median=float(((estimates[:, 2] - true[:, 2]).abs() * 1000).median()),
        yaw_deg_median=float(yaw_error_degrees(estimates, true).median()),
        bowl_xy_mm_median=float(bowl_xy.median()),
    )


def train_estimator(
    dataset: str | Path,
    out: str | Path,
    steps: int = 3000,
    *,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    validation_fraction: float = 0.1,
    width: int = 16,
    keypoints: int = 16,
    with_state: bool = True,
    progress: bool = True,
) -> EstimatorErrors:
    """Train, save into ``out`` (``estimator.safetensors``, ``estimator.json``) and return held-out errors."""
    dataset, out = Path(dataset).expanduser().resolve(), Path(out).expanduser().resolve()
    if (out / WEIGHTS_FILE).exists():
        raise EstimatorError(f"{out} already holds an estimator: choose a new --out")
    if steps < 1:
        raise EstimatorError(f"--steps must be at least 1, got {steps}")
    frames = load_labelled_frames(dataset)
    train_rows, validation_rows = _split(frames, validation_fraction)
    targets = targets_from_environment_state(frames.environment_state)
    mean, std = targets[train_rows].mean(0), targets[train_rows].std(0).clamp_min(1e-4)
    torch.manual_seed(seed)
    states = frames.state[train_rows]
    config = EstimatorConfig(
        camera_keys=frames.camera_keys,
        width=width,
        keypoints=keypoints,
        target_mean=mean.tolist(),
        target_std=std.tolist(),
        state_mean=states.mean(0).tolist() if with_state else [],
        state_std=states.std(0).clamp_min(1e-4).tolist() if with_state else [],
    )
    net = ObjectStateNet(config)
    started = time.monotonic()
    _fit(net, frames, train_rows, (targets - mean) / std, steps, batch_size, learning_rate, seed, progress)
    errors = measure_errors(net, frames, validation_rows)
    out.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in net.state_dict().items()}, out / WEIGHTS_FILE)
    record = {
        "config": asdict(config),
        "dataset": str(dataset),
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "train_seconds": round(time.monotonic() - started, 1),
        "held_out_errors": asdict(errors),
    }
    (out / CONFIG_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return errors


def _fit(
    net: ObjectStateNet,
    frames: LabelledFrames,
    train_rows: torch.Tensor,
    standardized: torch.Tensor,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    progress: bool,
) -> None:
    """``steps`` AdamW steps (one-cycle rate) of ``net`` on random batches of ``train_rows``."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    bar = tqdm(range(steps), desc="estimator", disable=not progress)
    for step in bar:
        net.train()
        rows = train_rows[torch.randint(len(train_rows), (batch_size,), generator=generator)]
        predicted = net(_images(frames, rows), frames.state[rows])
        loss = torch.nn.functional.mse_loss(predicted, standardized[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")


def load_estimator(directory: str | Path) -> ObjectStateNet:
    directory = Path(directory).expanduser()
    if not (directory / WEIGHTS_FILE).is_file() or not (directory / CONFIG_FILE).is_file():
        raise EstimatorError(
            f"{directory} holds no estimator ({WEIGHTS_FILE} + {CONFIG_FILE}): train one with "
            "./pants run backends/torch_lerobot:train-estimator -- --dataset D --out DIR"
        )
    record = json.loads((directory / CONFIG_FILE).read_text())
    net = ObjectStateNet(EstimatorConfig(**record["config"]))
    net.load_state_dict(load_file(directory / WEIGHTS_FILE))
    net.eval()
    return net


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset", required=True, type=Path, help="LeRobot v3 dataset with cameras + object state"
    )
    parser.add_argument("--out", required=True, type=Path, help="new estimator directory")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=16, help="channels of each camera's first convolution")
    parser.add_argument("--keypoints", type=int, default=16, help="spatial-softmax keypoints per camera")
    parser.add_argument(
        "--cameras-only",
        action="store_true",
        help="the estimator reads the cameras alone (default: also the joint state, which places the "
        "wrist camera)",
    )
    add_threads_flag(parser)
    return parser


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    decide_and_apply(1, args.threads)
    errors = train_estimator(
        args.dataset,
        args.out,
        args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        width=args.width,
        keypoints=args.keypoints,
        with_state=not args.cameras_only,
    )
    print(errors.table())
    print(f"estimator saved in {Path(args.out).resolve()}")
    return 0 if math.isfinite(errors.block_xy_mm_median) else 1


if __name__ == "__main__":
    sys.exit(main())
