"""The checkpoint card: what a checkpoint carries from its dataset and its training, in one file.

Training writes it once into every checkpoint folder (``card.json``, beside the backend's own files);
an evaluation reads it once per checkpoint (``libs.policy_api.registry.read_card``), before any policy is
loaded. It holds:

- ``scene``: the training dataset's ``scene.json`` (cameras, FOV, image size, ``environment_state``, ...),
  so a checkpoint is evaluated in the scene it was trained in and the contract checks compare cameras;
- ``stats``: the dataset's ``meta/stats.json`` (LeRobot layout), the reference for the de-normalisation
  check;
- ``block_positions``: the initial block xy of every training episode, drawn on the ``--grid`` map;
- ``observation_features``: name and shape of every observation feature the checkpoint was trained on
  (``observation.state``, ``observation.images.<camera>``, ``observation.environment_state``, ...), a
  general list, so a new feature needs no new field;
- ``action_space`` (``joint`` | ``ee``), the training ``step``, the ``dataset`` it came from and its ``task``.

Checkpoints written before cards existed kept ``scene.json``, ``stats.json`` and ``block_positions.json``
beside their weights; ``CheckpointCard.read`` reads those when there is no ``card.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from libs.policy_api.registry import PolicyLoadError

CARD_FILE = "card.json"
#: What a checkpoint written before cards kept beside its weights: card field -> file name.
LEGACY_FILES = {"scene": "scene.json", "stats": "stats.json", "block_positions": "block_positions.json"}


class CardError(PolicyLoadError):
    """A card file cannot be read; the message names the file and the fix."""


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
    #: Anything else a backend wants to say about the checkpoint (e.g. its policy type); reports only.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def action_stats(self) -> Mapping[str, Any] | None:
        """The dataset's ``action`` stats (mean, std, min, max), or None."""
        return (self.stats or {}).get("action")

    def feature(self, name: str) -> ObservationFeature | None:
        return next((feature for feature in self.observation_features if feature.name == name), None)

    def with_observation_features(self, names: Sequence[str]) -> CheckpointCard:
        """The card of a model that reads only ``names`` of its dataset's observation features."""
        kept = tuple(feature for feature in self.observation_features if feature.name in names)
        return replace(self, observation_features=kept)

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
        return cls(**known)

    def write(self, directory: str | Path) -> Path:
        """``directory/card.json`` (written whole, then renamed: a reader never sees half a card)."""
        path = Path(directory) / CARD_FILE
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        partial.replace(path)
        return path

    @classmethod
    def read(cls, directory: str | Path) -> CheckpointCard | None:
        """The card in ``directory``, else one built from the files a pre-card checkpoint kept, else None."""
        directory = Path(directory)
        if (directory / CARD_FILE).is_file():
            return cls.from_dict(_read_json(directory / CARD_FILE))
        legacy = {
            name: _read_json(directory / file)
            for name, file in LEGACY_FILES.items()
            if (directory / file).is_file()
        }
        return cls(**legacy) if legacy else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CardError(
            f"{path} is not readable JSON ({type(error).__name__}): the checkpoint is corrupt; copy the file "
            "from the training run or retrain"
        ) from error
