"""Expands a policy string into the checkpoints a sweep scores.

``torch_lerobot:runs/act`` (a run), ``torch_lerobot:runs/act/checkpoints`` or a single checkpoint directory
all work. Both layouts are recognised: LeRobot's ``checkpoints/NNNNNN/pretrained_model/config.json`` and this
project's jax layout ``checkpoints/NNNNNN/config.json`` (+ params). The step comes from the ``NNNNNN``
folder name; the ``last`` symlink LeRobot writes is skipped (and any other alias is de-duplicated by its real
path) so no checkpoint is scored twice.

``plan_checkpoints`` then reads each checkpoint's card once (``libs.policy_api.registry.read_card``) and
decides, once, the scene it is evaluated in: ``--scene`` if given, else the training scene its card
carries, else the bench default. Every later step (episodes, the ``--grid`` region, the scenes saved under
``OUT/scenes``, whiskers) uses that decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import (
    KNOWN_BACKENDS,
    PolicyLoadError,
    read_card,
    registered_backends,
    split_policy_uri,
)
from libs.sim.scene_config import SceneConfig

PRETRAINED_DIR_NAME = "pretrained_model"
CHECKPOINTS_DIR_NAME = "checkpoints"
CONFIG_FILE_NAME = "config.json"
#: Backends whose argument is not a checkpoint path.
PATHLESS_BACKENDS = frozenset({"scripted", "remote"})


class CheckpointNotFoundError(PolicyLoadError):
    """The policy string names no checkpoint; the message names the layouts that are understood."""


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
class CheckpointTarget:
    """One checkpoint to score: ``policy_uri`` is what ``make_policy`` receives for it."""

    checkpoint_id: str
    policy_uri: str
    step: int | None
    path: Path | None = None
    #: A perturbation arm of the scene (libs.sim.perturbations) this target runs under; None = the control.
    perturbation: str | None = None
    #: The checkpoint's card, read once by ``plan_checkpoints`` (None: it carries none).
    card: CheckpointCard | None = None
    #: The scene it is evaluated in, decided once by ``plan_checkpoints``; None for a target made by hand,
    #: whose scene the executor decides by the same rule from the loaded policy's card.
    scene: EvaluationScene | None = None

    def with_scene(self, card: CheckpointCard | None, scene_path: str | Path | None) -> CheckpointTarget:
        """This target with its card and the scene decided from it (the step from the card if unknown)."""
        step = self.step if self.step is not None or card is None else card.step
        return replace(self, card=card, scene=decide_scene(card, scene_path), step=step)


def file_safe_id(checkpoint_id: str) -> str:
    """``checkpoint_id`` as a file or folder name (a policy URI has ``:`` and ``/`` in it)."""
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in checkpoint_id) or "policy"


def is_checkpoint_dir(path: Path) -> bool:
    return (path / CONFIG_FILE_NAME).is_file() or (path / PRETRAINED_DIR_NAME / CONFIG_FILE_NAME).is_file()


def step_of(path: Path) -> int | None:
    folder = path.parent.name if path.name == PRETRAINED_DIR_NAME else path.name
    return int(folder) if folder.isdigit() else None


def checkpoint_id_of(path: Path) -> str:
    return path.parent.name if path.name == PRETRAINED_DIR_NAME else path.name


def expand_policy(uri: str) -> list[CheckpointTarget]:
    """Every checkpoint named by ``uri``, in step order (a single target for ``scripted``/``remote:``)."""
    backend, argument = split_policy_uri(uri)
    known = set(KNOWN_BACKENDS) | registered_backends()
    if backend not in known:  # the backend is the first thing wrong with `frobnicate:PATH`
        raise PolicyLoadError(
            f"unknown policy backend {backend!r} in {uri!r}: use one of {', '.join(sorted(known))}"
        )
    if backend in PATHLESS_BACKENDS or not argument:
        return [CheckpointTarget(checkpoint_id=uri, policy_uri=uri, step=None)]
    path = Path(argument).expanduser()
    if not path.exists():
        raise CheckpointNotFoundError(
            f"checkpoint path {path} does not exist: pass a run dir, its checkpoints/ dir or one "
            "checkpoints/NNNNNN dir"
        )
    if is_checkpoint_dir(path):
        return [CheckpointTarget(checkpoint_id_of(path), uri, step_of(path), path)]
    checkpoints_dir = path / CHECKPOINTS_DIR_NAME if (path / CHECKPOINTS_DIR_NAME).is_dir() else path
    targets: list[CheckpointTarget] = []
    seen: set[Path] = set()
    for child in sorted(checkpoints_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
        # `last` (and any alias) points at a checkpoint listed under its own NNNNNN name.
        if child.is_symlink() or not child.name.isdigit() or not is_checkpoint_dir(child):
            continue
        real = child.resolve()
        if real in seen:
            continue
        seen.add(real)
        targets.append(CheckpointTarget(child.name, f"{backend}:{child}", int(child.name), child))
    if not targets:
        raise CheckpointNotFoundError(
            f"no checkpoints under {path}: expected {CHECKPOINTS_DIR_NAME}/NNNNNN/{PRETRAINED_DIR_NAME}/"
            f"{CONFIG_FILE_NAME} (LeRobot) or {CHECKPOINTS_DIR_NAME}/NNNNNN/{CONFIG_FILE_NAME} (jax)"
        )
    return sorted(targets, key=lambda target: (target.step is None, target.step))


def plan_checkpoints(uri: str, scene_path: str | Path | None = None) -> list[CheckpointTarget]:
    """``expand_policy`` with every checkpoint's card read and its scene decided, once."""
    return [target.with_scene(read_card(target.policy_uri), scene_path) for target in expand_policy(uri)]
