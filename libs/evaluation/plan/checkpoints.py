"""Expands a policy string into the checkpoints a sweep scores.

``torch_lerobot:runs/act`` (a run), ``torch_lerobot:runs/act/checkpoints`` or a single checkpoint directory
all work: the backend registered for the name finds its checkpoints in its own folder layout
(``find_checkpoints``, ``libs.policy_api.registry``), in step order, each once.

``plan_checkpoints`` then reads each checkpoint's card once (``libs.policy_api.registry.read_card``) and
decides, once, the scene it is evaluated in: ``--scene`` if given, else the training scene its card
carries, else the bench default. Every later step (episodes, the ``--grid`` region, the scenes saved under
``OUT/scenes``, whiskers) uses that decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.policy_api.card import CheckpointCard
from libs.policy_api.checkpoint_folders import (
    CheckpointNotFoundError as CheckpointNotFoundError,  # re-exported: expand_policy raises it
)
from libs.policy_api.registry import backend, read_card, split_policy_uri
from libs.sim.scene_config import SceneConfig

#: Where an evaluation scene came from, as messages name it.
TRAINING_SCENE = "the checkpoint's training scene"
DEFAULT_SCENE = "the default scene"


@dataclass(frozen=True)
class EvaluationScene:
    """The scene one checkpoint is evaluated in (``decide_scene``) and where it came from."""

    #: The scene.json contents, as given (saved under ``OUT/scenes`` as they are).
    config: dict[str, Any]
    #: ``the scene PATH`` (--scene), ``TRAINING_SCENE`` or ``DEFAULT_SCENE``.
    source: str

    @property
    def is_training_scene(self) -> bool:
        return self.source == TRAINING_SCENE

    def load(self) -> SceneConfig:
        return SceneConfig.from_dict(self.config)

    def block_region(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The ``--grid`` region: where this scene places the block."""
        (x_min, x_max), (y_min, y_max) = self.load().block_region_xy
        return ((float(x_min), float(x_max)), (float(y_min), float(y_max)))


def decide_scene(card: CheckpointCard | None, scene_path: str | Path | None) -> EvaluationScene:
    """``scene_path`` (--scene) if given, else the training scene ``card`` carries, else the bench default."""
    if scene_path:
        SceneConfig.load(scene_path)  # a missing or malformed file is named in one line
        return EvaluationScene(json.loads(Path(scene_path).read_text()), f"the scene {scene_path}")
    if card is not None and card.scene is not None:
        return EvaluationScene(dict(card.scene), TRAINING_SCENE)
    return EvaluationScene(SceneConfig().to_dict(), DEFAULT_SCENE)


@dataclass(frozen=True)
class FoundCheckpoint:
    """A checkpoint a policy string names, before its card is read: ``policy_uri`` is what ``make_policy``
    receives for it."""

    checkpoint_id: str
    policy_uri: str
    step: int | None
    path: Path | None = None

    def planned(self, card: CheckpointCard | None, scene_path: str | Path | None) -> CheckpointTarget:
        """This checkpoint with its card and the scene decided from it (the step from the card if unknown)."""
        step = self.step if self.step is not None or card is None else card.step
        scene = decide_scene(card, scene_path)
        return CheckpointTarget(self.checkpoint_id, self.policy_uri, step, scene, self.path, card=card)


@dataclass(frozen=True)
class CheckpointTarget:
    """One checkpoint to score, its card read and its scene decided once (``FoundCheckpoint.planned``)."""

    checkpoint_id: str
    policy_uri: str
    step: int | None
    #: The scene it is evaluated in, decided once when it was planned.
    scene: EvaluationScene
    path: Path | None = None
    #: A perturbation arm of the scene (libs.sim.perturbations) this target runs under; "" = the control.
    #: An arm's target keeps its checkpoint's id: the arm is a field of the task key, never part of the id.
    arm: str = ""
    #: The checkpoint's card, read once when it was planned (None: it carries none).
    card: CheckpointCard | None = None


def target_name(checkpoint_id: str, arm: str = "") -> str:
    """How reports name a checkpoint played under a perturbation arm (its id alone for the control): a label
    for people, never read back (the arm is a field of its own wherever it is stored)."""
    return f"{checkpoint_id} under {arm}" if arm else checkpoint_id


def file_safe_id(checkpoint_id: str) -> str:
    """``checkpoint_id`` as a file or folder name (a policy URI has ``:`` and ``/`` in it)."""
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in checkpoint_id) or "policy"


def expand_policy(uri: str) -> list[FoundCheckpoint]:
    """Every checkpoint named by ``uri``, in step order (a single one for ``scripted``/``remote:``)."""
    name, argument = split_policy_uri(uri)
    find = backend(name, uri).find_checkpoints  # an unknown backend is named before its path
    if find is None or not argument:
        return [FoundCheckpoint(checkpoint_id=uri, policy_uri=uri, step=None)]
    found = find(Path(argument).expanduser())
    if len(found) == 1 and found[0].path == Path(argument).expanduser():
        # The string named one checkpoint: it is loaded as written.
        return [FoundCheckpoint(found[0].checkpoint_id, uri, found[0].step, found[0].path)]
    return [FoundCheckpoint(f.checkpoint_id, f"{name}:{f.path}", f.step, f.path) for f in found]


def plan_checkpoints(uri: str, scene_path: str | Path | None = None) -> list[CheckpointTarget]:
    """``expand_policy`` with every checkpoint's card read and its scene decided, once."""
    return [found.planned(read_card(found.policy_uri), scene_path) for found in expand_policy(uri)]


def plan_one_checkpoint(uri: str, scene_path: str | Path | None = None) -> CheckpointTarget:
    """The one checkpoint ``uri`` names, loaded as written (rollouts, whiskers): its card read once (a remote
    policy's from a short connection of its own) and its scene decided from it."""
    card = read_card(uri)
    checkpoint_id = split_policy_uri(uri)[1] if card is not None else ""
    return FoundCheckpoint(checkpoint_id, uri, None).planned(card, scene_path)
