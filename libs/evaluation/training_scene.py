"""Is the scene a checkpoint carries the scene its training dataset was recorded in?

A checkpoint's card keeps a copy of its training dataset's ``meta/scene.json`` (a checkpoint older than
cards, a ``scene.json`` file), and an evaluation without
``--scene`` runs in that copy. An edited copy (a camera's FOV changed by hand) would be evaluated in the
edited scene without a word, though the dataset it names says otherwise. When the training dataset is
reachable — ``train_config.json`` beside the checkpoint names its root (LeRobot's layout), or the caller
knows it (a checkpoint card's ``dataset``) — the two scenes are compared and a difference is refused in one
line naming both files, the first differences and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from libs.policy_api.card import CARD_FILE
from libs.policy_api.contracts import ContractViolation
from libs.sim.scene_config import SceneConfig, SceneConfigError

TRAIN_CONFIG_FILE = "train_config.json"
SCENE_FILE = "scene.json"
DATASET_SCENE = Path("meta") / SCENE_FILE
#: Where LeRobot keeps a checkpoint's files inside ``checkpoints/NNNNNN/``.
PRETRAINED_DIR = "pretrained_model"
#: Differences named in the line (the rest are counted).
SHOWN_DIFFERENCES = 3


class TrainingSceneMismatch(ContractViolation):
    """The checkpoint's scene differs from its training dataset's; the message names both and the fix."""


def _beside(checkpoint_dir: Path, name: str) -> Path | None:
    for folder in (checkpoint_dir, checkpoint_dir / PRETRAINED_DIR):
        if (folder / name).is_file():
            return folder / name
    return None


def training_dataset_root(checkpoint_dir: str | Path) -> Path | None:
    """The dataset root ``train_config.json`` (beside the checkpoint) names, or None.

    An unreadable ``train_config.json`` is the backend's to report when it loads; here it means "unknown".
    """
    path = _beside(Path(checkpoint_dir), TRAIN_CONFIG_FILE)
    if path is None:
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    dataset = config.get("dataset") if isinstance(config, Mapping) else None
    root = dataset.get("root") if isinstance(dataset, Mapping) else None
    return Path(root).expanduser() if isinstance(root, str) and root else None


def training_scene_difference(
    checkpoint_scene: Mapping[str, Any] | None,
    checkpoint_scene_name: str,
    dataset_root: str | Path | None,
) -> str | None:
    """One line naming how ``checkpoint_scene`` differs from ``dataset_root``'s ``meta/scene.json`` and the
    fix, or None when they agree or the dataset's scene cannot be read (moved, deleted, another machine)."""
    if checkpoint_scene is None or dataset_root is None:
        return None
    dataset_scene = Path(dataset_root) / DATASET_SCENE
    try:
        trained_in = SceneConfig.load(dataset_scene)
        carried = SceneConfig.from_dict(dict(checkpoint_scene))
    except (OSError, SceneConfigError):
        return None  # not reachable or not comparable: the existing checks still run on the carried scene
    differences = carried.differences(trained_in)
    if not differences:
        return None
    shown = "; ".join(differences[:SHOWN_DIFFERENCES])
    more = len(differences) - SHOWN_DIFFERENCES
    shown += f"; {more} more" if more > 0 else ""
    restore = (
        f"(cp {dataset_scene} {checkpoint_scene_name})"
        if checkpoint_scene_name.endswith(SCENE_FILE)
        else f"(the 'scene' of its {CARD_FILE} is a copy of {dataset_scene})"
    )
    return (
        f"the checkpoint's scene {checkpoint_scene_name} differs from its training dataset's scene "
        f"{dataset_scene} (checkpoint vs dataset: {shown}): restore the checkpoint's copy {restore}, "
        "or pass --scene to evaluate in another scene on purpose"
    )


def check_training_scene(
    checkpoint_dir: str | Path | None,
    checkpoint_scene: Mapping[str, Any] | None,
    dataset_root: str | Path | None = None,
) -> None:
    """Raise ``TrainingSceneMismatch`` when the scene ``checkpoint_dir`` carries differs from its training
    dataset's (``dataset_root``, else the one its ``train_config.json`` names); silent when either is
    unknown."""
    if checkpoint_dir is None or checkpoint_scene is None:
        return
    checkpoint_dir = Path(checkpoint_dir)
    root = dataset_root if dataset_root is not None else training_dataset_root(checkpoint_dir)
    scene_file = _beside(checkpoint_dir, CARD_FILE) or _beside(checkpoint_dir, SCENE_FILE)
    name = str(scene_file) if scene_file is not None else f"of {checkpoint_dir}"
    line = training_scene_difference(checkpoint_scene, name, root)
    if line is not None:
        raise TrainingSceneMismatch(line)
