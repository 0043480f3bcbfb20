"""A small visual success classifier: did this episode end with the block in the bowl?

For rollouts without a simulator's verdict (real robot, another simulator), the flywheel needs a judge that
only sees the camera. It is trained on frames labelled by the simulator's outcomes: each episode's last
``frames_per_episode`` frames of one camera, label 1 for ``success`` and 0 otherwise (the end of the episode
is where success is visible: the block resting in the bowl). An episode's score is the mean probability over
those frames. Training holds out a fraction of episodes (by episode, never by frame, so near-identical
frames cannot leak) and reports precision and recall on them against the simulator.

A trained model is a directory (``model.pt`` state dict + ``classifier.json`` config + ``metrics.json``) and
is usable wherever a keep filter is accepted, as ``classifier:DIR`` (registered with
``libs.datasets.judges``):

    ./pants run backends/torch_lerobot:success-classifier -- train --dataset DATA [--dataset DATA2] --out CLF
    ./pants run backends/torch_lerobot:success-classifier -- evaluate --model CLF --dataset DATA
    ./pants run backends/torch_lerobot:success-classifier -- filter --model CLF SRC OUT
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from libs.datasets.judges import register_judge
from libs.datasets.lerobot_v3 import DatasetError, LeRobotV3Dataset

CONFIG_FILE = "classifier.json"
WEIGHTS_FILE = "model.pt"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class ClassifierConfig:
    camera_key: str
    height: int
    width: int
    frames_per_episode: int = 4
    threshold: float = 0.5


class SuccessNet(nn.Module):
    """Four strided conv blocks and a linear head: enough to see a block inside a bowl at 96×128."""

    def __init__(self) -> None:
        super().__init__()
        channels = (3, 16, 32, 64, 64)
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(channels):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels[-1], 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) or float (B, 3, H, W) in [0, 1] → success logits (B,)."""
        if images.dtype == torch.uint8:
            images = images.permute(0, 3, 1, 2).float() / 255.0
        return self.head(self.features(images)).squeeze(-1)


@dataclass(frozen=True)
class Metrics:
    episodes: int
    positives: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    accuracy: float

    def line(self) -> str:
        return (
            f"held-out episodes {self.episodes} ({self.positives} successes): "
            f"precision {self.precision:.2f}, recall {self.recall:.2f}, accuracy {self.accuracy:.2f} "
            "(vs the simulator's outcomes)"
        )


def metrics_of(predicted: Sequence[bool], actual: Sequence[bool]) -> Metrics:
    predicted_arr, actual_arr = np.asarray(predicted, bool), np.asarray(actual, bool)
    tp = int(np.sum(predicted_arr & actual_arr))
    fp = int(np.sum(predicted_arr & ~actual_arr))
    fn = int(np.sum(~predicted_arr & actual_arr))
    precision = tp / (tp + fp) if tp + fp else 1.0 if not actual_arr.any() else 0.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    accuracy = float(np.mean(predicted_arr == actual_arr)) if len(actual_arr) else 0.0
    return Metrics(len(actual_arr), int(actual_arr.sum()), tp, fp, fn, precision, recall, accuracy)


def _last_frames(frames: np.ndarray, count: int) -> np.ndarray:
    return frames[-count:] if len(frames) >= count else frames


def _episode_frames(dataset: LeRobotV3Dataset, episode_index: int, config: ClassifierConfig) -> np.ndarray:
    # Decoding the whole episode is simplest; episodes are short (≤ a few hundred frames).
    return _last_frames(dataset.video_frames(episode_index, config.camera_key), config.frames_per_episode)


def _labelled_episodes(roots: Sequence[str | Path]) -> list[tuple[LeRobotV3Dataset, int, bool]]:
    items = []
    for root in roots:
        dataset = LeRobotV3Dataset(root)
        outcomes = dataset.outcomes
        if all(outcome is None for outcome in outcomes.values()):
            raise DatasetError(f"{root} records no outcomes: train on simulator rollouts (record/rollouts)")
        items += [(dataset, index, outcome == "success") for index, outcome in outcomes.items() if outcome]
    return items


class SuccessClassifier:
    """A trained model plus its config; ``score``/``judge`` work on uint8 frames of one camera."""

    def __init__(self, config: ClassifierConfig, model: SuccessNet) -> None:
        self.config = config
        self.model = model.eval()

    @torch.no_grad()
    def score(self, frames: np.ndarray) -> float:
        """Mean success probability over the episode's last frames (uint8 N×H×W×3)."""
        chosen = _last_frames(np.asarray(frames), self.config.frames_per_episode)
        if chosen.shape[1:3] != (self.config.height, self.config.width):
            raise DatasetError(
                f"classifier expects {self.config.camera_key} at {self.config.height}x{self.config.width}, "
                f"got {chosen.shape[1]}x{chosen.shape[2]}: retrain it on data recorded at this size"
            )
        probabilities = torch.sigmoid(self.model(torch.from_numpy(np.ascontiguousarray(chosen))))
        return float(probabilities.mean())

    def judge(self, metadata: Mapping[str, Any], frames: Mapping[str, np.ndarray]) -> bool:
        if self.config.camera_key not in frames:
            raise DatasetError(
                f"the episode has no {self.config.camera_key!r} frames: the classifier was trained on it"
            )
        return self.score(frames[self.config.camera_key]) >= self.config.threshold

    def save(self, directory: str | Path, metrics: Metrics | None = None) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), directory / WEIGHTS_FILE)
        (directory / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2))
        if metrics is not None:
            (directory / METRICS_FILE).write_text(json.dumps(asdict(metrics), indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> SuccessClassifier:
        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
            raise DatasetError(
                f"{directory} is not a success classifier ({CONFIG_FILE} or {WEIGHTS_FILE} missing): "
                "train one with `success-classifier train`"
            )
        config = ClassifierConfig(**json.loads((directory / CONFIG_FILE).read_text()))
        model = SuccessNet()
        model.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        return cls(config, model)


def _classifier_config(
    items: Sequence[tuple[LeRobotV3Dataset, int, bool]],
    datasets: Sequence[str | Path],
    camera: str | None,
    frames_per_episode: int,
) -> ClassifierConfig:
    """The camera (a short name like ``front`` or a full feature key; default the first dataset's first
    camera) and its image size as the first dataset records it."""
    first = items[0][0] if items else LeRobotV3Dataset(datasets[0])
    camera_key = (
        camera if camera is None or camera.startswith("observation.") else f"observation.images.{camera}"
    )
    camera_key = camera_key or first.camera_keys[0]
    if camera_key not in first.camera_keys:
        raise DatasetError(f"camera {camera_key!r} is not in {first.root}: use one of {first.camera_keys}")
    height, width, _ = first.features[camera_key]["shape"]
    return ClassifierConfig(camera_key, int(height), int(width), frames_per_episode)


def _held_out_episodes(labels: np.ndarray, holdout_fraction: float, seed: int) -> list[int]:
    """Stratified hold-out by episode, so both classes are evaluated."""
    if len(labels) < 4 or labels.all() or not labels.any():
        raise DatasetError(
            f"need at least 4 episodes with both successes and failures to train, got {len(labels)} "
            f"({int(labels.sum())} successes): record rollouts without --keep, or more episodes"
        )
    rng = np.random.default_rng(seed)
    held_out: list[int] = []
    for value in (True, False):
        members = rng.permutation(np.flatnonzero(labels == value))
        held_out += members[: max(1, round(holdout_fraction * len(members)))].tolist()
    return held_out


def _fit(
    images: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    progress: bool,
) -> SuccessNet:
    """A SuccessNet trained on uint8 frames and their 0/1 labels (positives weighted to balance the
    classes)."""
    torch.manual_seed(seed)
    model = SuccessNet()
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    positives = max(float(targets.sum()), 1.0)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(targets) - positives) / positives))
    iterator: Any = range(epochs)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="success classifier", unit="epoch")
    for _ in iterator:
        model.train()
        order = torch.randperm(len(images))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if len(batch) < 2:
                continue  # BatchNorm needs two samples
            augmented = images[batch]
            if torch.rand(()) < 0.5:
                augmented = augmented.flip(2)  # left-right flip: success does not depend on handedness
            loss = loss_fn(model(augmented), targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model


def train_classifier(
    datasets: Sequence[str | Path],
    out: str | Path,
    camera: str | None = None,
    holdout_fraction: float = 0.3,
    frames_per_episode: int = 4,
    epochs: int = 30,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> tuple[SuccessClassifier, Metrics]:
    """Train on the simulator-labelled episodes of ``datasets``; precision/recall on held-out episodes."""
    items = _labelled_episodes(datasets)
    config = _classifier_config(items, datasets, camera, frames_per_episode)
    labels = np.array([label for _, _, label in items])
    held_out = _held_out_episodes(labels, holdout_fraction, seed)
    train_ids = [i for i in range(len(items)) if i not in set(held_out)]
    frames = {i: _episode_frames(items[i][0], items[i][1], config) for i in range(len(items))}
    train_x = np.concatenate([frames[i] for i in train_ids])
    train_y = np.concatenate([np.full(len(frames[i]), float(labels[i]), np.float32) for i in train_ids])
    model = _fit(
        torch.from_numpy(train_x),
        torch.from_numpy(train_y),
        epochs,
        batch_size,
        learning_rate,
        seed,
        progress,
    )
    classifier = SuccessClassifier(config, model)
    predicted = [classifier.score(frames[i]) >= config.threshold for i in held_out]
    metrics = metrics_of(predicted, [bool(labels[i]) for i in held_out])
    classifier.save(out, metrics)
    return classifier, metrics


def evaluate_classifier(model_dir: str | Path, datasets: Sequence[str | Path]) -> Metrics:
    classifier = SuccessClassifier.load(model_dir)
    items = _labelled_episodes(datasets)
    predicted = [
        classifier.score(_episode_frames(ds, index, classifier.config)) >= 0.5 for ds, index, _ in items
    ]
    return metrics_of(predicted, [label for _, _, label in items])


def _judge_factory(argument: str) -> Any:
    if not argument:
        raise DatasetError("classifier judge needs a model directory: --keep classifier:DIR")
    return SuccessClassifier.load(argument).judge


register_judge("classifier", _judge_factory)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="success-classifier", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train on simulator-labelled datasets")
    train.add_argument("--dataset", type=Path, action="append", required=True)
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--camera", default=None, help="camera name or key (default: the first camera)")
    train.add_argument("--holdout", type=float, default=0.3)
    train.add_argument("--frames-per-episode", type=int, default=4)
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--seed", type=int, default=0)
    evaluate = commands.add_parser("evaluate", help="precision/recall against recorded outcomes")
    evaluate.add_argument("--model", type=Path, required=True)
    evaluate.add_argument("--dataset", type=Path, action="append", required=True)
    keep = commands.add_parser("filter", help="write the episodes the classifier calls successes")
    keep.add_argument("--model", type=Path, required=True)
    keep.add_argument("src", type=Path)
    keep.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            _, metrics = train_classifier(
                args.dataset,
                args.out,
                args.camera,
                args.holdout,
                args.frames_per_episode,
                args.epochs,
                seed=args.seed,
            )
            print(metrics.line())
            print(f"model written to {args.out}; use it as --keep classifier:{args.out}")
        elif args.command == "evaluate":
            print(evaluate_classifier(args.model, args.dataset).line())
        else:
            from libs.datasets.convert import filter_episodes

            print(f"wrote {filter_episodes(args.src, args.out, keep=f'classifier:{args.model}')}")
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
