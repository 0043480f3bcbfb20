"""Is the scene a checkpoint carries the scene its training dataset was recorded in?

A checkpoint's card keeps a copy of its training dataset's ``meta/scene.json`` (a checkpoint older than
cards, a ``scene.json`` file its backend reads into the card), and an evaluation without ``--scene`` runs in
that copy. An edited copy (a camera's FOV changed by hand) would be evaluated in the edited scene without a
word, though the dataset it names says otherwise. When the training dataset the card names (its
``dataset``, which each backend fills from its own layout) is reachable, the two scenes are compared and a
difference is refused in one line naming both files, the first differences and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from libs.policy_api.card import CARD_FILE
from libs.policy_api.contracts import ContractViolation
from libs.sim.scene_config import SceneConfig, SceneConfigError

SCENE_FILE = "scene.json"
DATASET_SCENE = Path("meta") / SCENE_FILE
#: Differences named in the line (the rest are counted).
SHOWN_DIFFERENCES = 3


class TrainingSceneMismatch(ContractViolation):
    """The checkpoint's scene differs from its training dataset's; the message names both and the fix."""


def _scene_file(checkpoint_dir: Path) -> Path | None:
    """The file holding the checkpoint's scene copy (its card, else an older ``scene.json``), in the
    checkpoint folder or one level down (a backend's own folder inside it)."""
    for name in (CARD_FILE, SCENE_FILE):
        found = [checkpoint_dir / name] if (checkpoint_dir / name).is_file() else []
        found += sorted(checkpoint_dir.glob(f"*/{name}"))
        if found:
            return found[0]
    return None


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
    if trained_in.environment_state and not carried.environment_state:
        # A checkpoint may read less than its dataset recorded: one that estimates the object state from
        # its cameras carries a scene without it. (It can never read state its dataset lacked.)
        trained_in = replace(trained_in, environment_state=False)
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
    dataset_root: str | Path | None,
) -> None:
    """Raise ``TrainingSceneMismatch`` when the scene ``checkpoint_dir`` carries differs from its training
    dataset's (``dataset_root``, the card's ``dataset``); silent when either is unknown."""
    if checkpoint_dir is None or checkpoint_scene is None or dataset_root is None:
        return
    checkpoint_dir = Path(checkpoint_dir)
    scene_file = _scene_file(checkpoint_dir)
    name = str(scene_file) if scene_file is not None else f"of {checkpoint_dir}"
    line = training_scene_difference(checkpoint_scene, name, dataset_root)
    if line is not None:
        raise TrainingSceneMismatch(line)
