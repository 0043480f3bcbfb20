"""The checkpoints a policy string names, each with its card and the scene it is evaluated in.

``torch_lerobot:runs/act`` (a run), its ``checkpoints/`` folder or one checkpoint all work: the backend
registered for the name finds its checkpoints in its own layout (``libs.policy_api.registry``). Each
checkpoint's card is read once, here, and its scene decided once, here: ``--scene`` if given, else the
training scene its card carries, else the bench default. Every later step (episodes, the ``--grid``
region, the saved scenes, whiskers) uses that decision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import backend, read_card, split_policy_uri
from libs.sim.scene_config import SceneConfig


@dataclass(frozen=True)
class CheckpointTarget:
    """One checkpoint to score: ``policy_uri`` is what ``make_policy`` receives for it."""

    checkpoint_id: str
    policy_uri: str
    step: int | None
    path: Path | None = None
    card: CheckpointCard | None = None
    #: The scene this checkpoint is evaluated in (see the module docstring); None until decided.
    scene: SceneConfig | None = None


def file_safe_id(checkpoint_id: str) -> str:
    """``checkpoint_id`` as a file or folder name (a policy URI has ``:`` and ``/`` in it)."""
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in checkpoint_id) or "policy"


def expand_policy(uri: str) -> list[CheckpointTarget]:
    """Every checkpoint named by ``uri``, in step order (a single target for ``scripted``/``remote:``)."""
    name, argument = split_policy_uri(uri)
    find = backend(name, uri).find_checkpoints
    if find is None or not argument:
        return [CheckpointTarget(checkpoint_id=uri, policy_uri=uri, step=None)]
    path = Path(argument).expanduser()
    found = find(path)
    if len(found) == 1 and found[0].path == path:  # the string named one checkpoint: keep it as written
        return [CheckpointTarget(found[0].checkpoint_id, uri, found[0].step, path)]
    return [CheckpointTarget(f.checkpoint_id, f"{name}:{f.path}", f.step, f.path) for f in found]


def decide_scene(target: CheckpointTarget, scene_path: str | Path | None) -> CheckpointTarget:
    """``target`` with its card read and its scene decided: ``scene_path``, else the card's, else default."""
    card = read_card(target.policy_uri)
    if scene_path:
        scene = SceneConfig.load(scene_path)
    elif card is not None and card.scene is not None:
        scene = SceneConfig.from_dict(card.scene)
    else:
        scene = SceneConfig()
    step = target.step if target.step is not None else (card.step if card is not None else None)
    return replace(target, card=card, scene=scene, step=step)


def checkpoints_to_evaluate(uri: str, scene_path: str | Path | None = None) -> list[CheckpointTarget]:
    """``expand_policy`` with every checkpoint's card read and scene decided, once."""
    return [decide_scene(target, scene_path) for target in expand_policy(uri)]
