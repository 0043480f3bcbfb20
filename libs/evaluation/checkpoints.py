"""Expands a policy string into the checkpoints a sweep scores.

``torch_lerobot:runs/act`` (a run), ``torch_lerobot:runs/act/checkpoints`` or a single checkpoint directory
all work. Both layouts are recognised: LeRobot's ``checkpoints/NNNNNN/pretrained_model/config.json`` and this
project's jax layout ``checkpoints/NNNNNN/config.json`` (+ params). The step comes from the ``NNNNNN``
folder name; the ``last`` symlink LeRobot writes is skipped (and any other alias is de-duplicated by its real
path) so no checkpoint is scored twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.policy_api.registry import KNOWN_BACKENDS, PolicyLoadError, registered_backends, split_policy_uri

PRETRAINED_DIR_NAME = "pretrained_model"
CHECKPOINTS_DIR_NAME = "checkpoints"
CONFIG_FILE_NAME = "config.json"
#: Backends whose argument is not a checkpoint path.
PATHLESS_BACKENDS = frozenset({"scripted", "remote"})


class CheckpointNotFoundError(PolicyLoadError):
    """The policy string names no checkpoint; the message names the layouts that are understood."""


@dataclass(frozen=True)
class CheckpointTarget:
    """One checkpoint to score: ``policy_uri`` is what ``make_policy`` receives for it."""

    checkpoint_id: str
    policy_uri: str
    step: int | None
    path: Path | None = None
    #: A perturbation arm of the scene (libs.sim.perturbations) this target runs under; None = the control.
    perturbation: str | None = None


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
