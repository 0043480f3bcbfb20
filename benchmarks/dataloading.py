"""Data-loading throughput on our datasets: LeRobot's ``LeRobotDataset`` + torch ``DataLoader`` (video and
image modes; 0, 2 and 4 workers) side by side with our episode-decoding loader
(``libs.datasets.fast_loader``).

Every loader yields the same training sample: state, an action chunk of ``--chunk`` steps, and every camera
frame. LeRobot's loader does the same work for every sample, so it is timed over ``--batches`` batches after
warm-up; ours decodes a group of episodes at once and then serves it, so it is timed over whole epochs with
everything included (decoding bursts and pool start). Time to the first batch is reported as start-up.

    ./pants run benchmarks:dataloading -- [--dataset DIR] [--episodes 6] [--size 96x128] [--batches 20]

Without ``--dataset`` it records scripted-expert episodes (video) and converts them to image mode.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _lerobot_loader(root: Path, chunk: int, fps: int, batch_size: int, workers: int) -> Iterable[Any]:
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = LeRobotDataset(
        "local/bench",
        root=root,
        delta_timestamps={"action": [i / fps for i in range(chunk)]},
        video_backend="pyav",  # as training does: torchcodec needs a system FFmpeg
    )
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=False
    )


def _measure_fast_loader(
    root: Path, chunk: int, batch_size: int, workers: int, epochs: int
) -> tuple[float, float]:
    from libs.datasets.fast_loader import iterate_batches

    started = time.perf_counter()
    startup = None
    samples = 0
    for epoch in range(epochs):
        for batch in iterate_batches(root, batch_size, workers, action_horizon=chunk, seed=epoch):
            if startup is None:
                startup = time.perf_counter() - started
            samples += len(batch["index"])
    return samples / (time.perf_counter() - started), startup or 0.0


def _measure(loader: Iterable[Any], batches: int, warmup: int, batch_size: int) -> tuple[float, float]:
    started = time.perf_counter()
    iterator = iter(loader)
    for _ in range(warmup):
        next(iterator)
    startup = time.perf_counter() - started
    started = time.perf_counter()
    count = 0
    for _ in range(batches):
        try:
            next(iterator)
        except StopIteration:
            iterator = iter(loader)
            next(iterator)
        count += batch_size
    return count / (time.perf_counter() - started), startup


def _prepare(args: argparse.Namespace, workdir: Path) -> tuple[Path, Path]:
    from libs.datasets.convert import convert, user_features
    from libs.datasets.lerobot_v3 import LeRobotV3Dataset

    if args.dataset:
        video = Path(args.dataset)
    else:
        from libs.datasets.record import record_scripted_dataset
        from libs.sim.scene_config import SceneConfig

        height, width = (int(part) for part in args.size.split("x"))
        video = workdir / "video"
        print(f"recording {args.episodes} scripted episodes at {height}x{width} into {video} ...", flush=True)
        record_scripted_dataset(
            video, episodes=args.episodes, scene=SceneConfig().with_image_size(height, width)
        )
    source = LeRobotV3Dataset(video)
    features = user_features(source)
    for key in source.video_keys:
        features[key] = {**features[key], "dtype": "image"}
        features[key].pop("info", None)
    images = convert(video, workdir / "images", features=features, progress=False)
    return video, images


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dataloading", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=None, help="a video-mode dataset (default: record one)")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--size", default="96x128")
    parser.add_argument("--workers", default="0,2,4")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed for our loader")
    parser.add_argument("--chunk", type=int, default=10, help="action chunk length (delta_timestamps)")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    from libs.datasets.lerobot_v3 import LeRobotV3Dataset

    workers = [int(value) for value in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="dataloading-") as scratch:
        video, images = _prepare(args, Path(scratch))
        info = LeRobotV3Dataset(video)
        print(
            f"dataset: {info.num_episodes} episodes, {info.num_frames} frames, cameras {info.camera_keys}, "
            f"{info.features[info.camera_keys[0]]['shape'][:2]} px, batch {args.batch_size}, "
            f"chunk {args.chunk}, CPU cores {os.cpu_count()} (shared machines make absolute numbers noisy)"
        )
        rows = []
        for label, root in (("video", video), ("image", images)):
            for count in workers:
                loader = _lerobot_loader(root, args.chunk, info.fps, args.batch_size, count)
                rate, startup = _measure(loader, args.batches, args.warmup, args.batch_size)
                rows.append((f"LeRobotDataset + DataLoader ({label})", count, rate, startup))
                print(f"  measured {rows[-1][0]} workers={count}: {rate:.1f} samples/s", flush=True)
        for count in workers:
            rate, startup = _measure_fast_loader(video, args.chunk, args.batch_size, count, args.epochs)
            rows.append(("so101lab fast_loader (video, decode once per episode)", count, rate, startup))
            print(f"  measured {rows[-1][0]} workers={count}: {rate:.1f} samples/s", flush=True)
    baseline = rows[0][2]
    print()
    print(f"{'loader':<56} {'workers':>7} {'samples/s':>10} {'vs LeRobot video w0':>20} {'startup s':>9}")
    for name, count, rate, startup in rows:
        print(f"{name:<56} {count:>7} {rate:>10.1f} {rate / baseline:>19.2f}x {startup:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
