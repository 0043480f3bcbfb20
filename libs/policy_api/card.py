"""The checkpoint card: what a checkpoint carries from its dataset and its training, in one file.

Training writes it once into every checkpoint folder (``card.json``, beside the backend's own files; both
backends' training build it with ``card_from_dataset``); an evaluation reads it once per checkpoint, before
any policy is loaded, and a loaded policy exposes the same card (``HasCard``). It holds:

- ``scene``: the training dataset's ``meta/scene.json`` (cameras, FOV, image size, ``environment_state``),
  so a checkpoint is evaluated in the scene it was trained in and the contract checks compare cameras;
- ``stats``: the dataset's ``meta/stats.json`` (LeRobot layout), the reference for the de-normalisation
  check (``action_stats``);
- ``block_positions``: the initial block xy of every training episode, drawn on the ``--grid`` map;
- ``observation_features``: name and shape of every observation feature of the training dataset
  (``observation.state``, ``observation.images.<camera>``, ...), a general list, so a new feature needs no
  new field;
- ``action_space`` (``joint`` | ``ee``), the training ``step``, the ``dataset`` root it came from (the
  training-scene check compares the carried scene with it), its ``task`` and the data's ``fps``.

Checkpoints written before cards existed kept ``scene.json``, ``stats.json`` and ``block_positions.json``
beside their weights; ``CheckpointCard.read`` builds their card from those files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from libs.policy_api.load_errors import PolicyLoadError
from libs.policy_api.types import ACTION_KEY

CARD_FILE = "card.json"
#: What a checkpoint written before cards kept beside its weights: card field -> file name.
LEGACY_FILES = {"scene": "scene.json", "stats": "stats.json", "block_positions": "block_positions.json"}
#: A dataset's ``meta/`` folder holds the same three files under the same names, and ``info.json``.
DATASET_META_DIR = "meta"
DATASET_INFO_FILE = "info.json"
OBSERVATION_PREFIX = "observation."
#: An action of this length is an end-effector target (xyz, approach, yaw, roll, gripper); else joints.
EE_ACTION_DIM = 7


class CardError(PolicyLoadError):
    """A card (or a file it is built from) cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class ObservationFeature:
    """One observation entry a checkpoint was trained on: its key and the shape of one frame's value."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class CheckpointCard:
    """What a checkpoint carries from its dataset and training (see the module docstring)."""

    scene: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    block_positions: list[list[float]] | None = None
    observation_features: tuple[ObservationFeature, ...] = ()
    action_space: str | None = None
    step: int | None = None
    dataset: str | None = None
    task: str | None = None
    #: The training data's frame rate (its info.json ``fps``): the input-drift check compares it with the
    #: env's control rate.
    fps: float | None = None
    #: What a backend adds about the checkpoint (e.g. its policy type or config name); reports only.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def action_stats(self) -> Mapping[str, Any] | None:
        """The dataset's ``action`` stats (mean, std, min, max), or None."""
        return (self.stats or {}).get(ACTION_KEY)

    def with_fields(self, **changes: Any) -> CheckpointCard:
        """A copy with ``changes`` (e.g. the step, known only from the checkpoint's folder name)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["observation_features"] = [
            {"name": feature.name, "shape": list(feature.shape)} for feature in self.observation_features
        ]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointCard:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["observation_features"] = tuple(
            ObservationFeature(str(item["name"]), tuple(int(size) for size in item["shape"]))
            for item in data.get("observation_features") or ()
        )
        known["block_positions"] = _positions(data.get("block_positions"))
        known["extra"] = dict(data.get("extra") or {})
        return cls(**known)

    def write(self, directory: str | Path) -> Path:
        """``directory/card.json``, written whole then renamed: a reader never sees half a card."""
        path = Path(directory) / CARD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(CARD_FILE + ".partial")
        partial.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        partial.replace(path)
        return path

    @classmethod
    def read(cls, directory: str | Path) -> CheckpointCard | None:
        """The card in ``directory``, else one built from the files a pre-card checkpoint kept, else None."""
        directory = Path(directory)
        if (directory / CARD_FILE).is_file():
            return cls.from_dict(_read_json(directory / CARD_FILE))
        legacy = _legacy_fields(directory)
        return cls(**legacy) if legacy else None


def card_from_dataset(
    root: str | Path,
    *,
    step: int | None = None,
    task: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> CheckpointCard:
    """The card a checkpoint trained on the dataset at ``root`` carries (what training writes)."""
    meta = Path(root) / DATASET_META_DIR
    info_path = meta / DATASET_INFO_FILE
    info = _read_json(info_path) if info_path.is_file() else {}
    features = info.get("features") or {}
    observations = tuple(
        ObservationFeature(name, tuple(int(size) for size in feature.get("shape") or ()))
        for name, feature in features.items()
        if name.startswith(OBSERVATION_PREFIX)
    )
    action_shape = (features.get(ACTION_KEY) or {}).get("shape") or ()
    action_space = ("ee" if int(action_shape[0]) == EE_ACTION_DIM else "joint") if action_shape else None
    return CheckpointCard(
        **_legacy_fields(meta),
        observation_features=observations,
        action_space=action_space,
        step=step,
        dataset=str(Path(root).expanduser().absolute()),
        task=task,
        fps=float(info["fps"]) if info.get("fps") else None,
        extra=dict(extra or {}),
    )


def dataset_block_positions(root: str | Path) -> list[list[float]] | None:
    """The initial block xy of a recorded dataset's episodes (``meta/block_positions.json``), or None."""
    return _legacy_fields(Path(root) / DATASET_META_DIR).get("block_positions")


@runtime_checkable
class HasCard(Protocol):
    """Optional: a policy loaded from a checkpoint exposes its card (None when it carries none)."""

    @property
    def card(self) -> CheckpointCard | None: ...


def card_of(policy: Any) -> CheckpointCard | None:
    """The card of ``policy`` (or of the policy a guard wraps, ``.inner``), or None."""
    inner = getattr(policy, "inner", policy)
    return inner.card if isinstance(inner, HasCard) else None


def _legacy_fields(folder: Path) -> dict[str, Any]:
    """scene / stats / block_positions from the files of that name in ``folder`` (those present)."""
    fields: dict[str, Any] = {}
    for name, file in LEGACY_FILES.items():
        if (folder / file).is_file():
            fields[name] = _read_json(folder / file)
    if "block_positions" in fields:
        fields["block_positions"] = _positions(fields["block_positions"])
    return fields


def _positions(data: Any) -> list[list[float]] | None:
    """Block positions as ``[[x, y], ...]``; a file may also hold ``{"block_positions": [...]}``."""
    if isinstance(data, Mapping):
        data = data.get("block_positions")
    if not isinstance(data, list):
        return None
    return [
        [float(item[0]), float(item[1])] for item in data if isinstance(item, list | tuple) and len(item) >= 2
    ]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CardError(
            f"{path} is not valid JSON ({type(error).__name__}: {error}): the file is truncated or corrupt; "
            "copy it again from the training run (or the dataset's meta/)"
        ) from None
