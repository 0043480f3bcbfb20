"""The checkpoint card: written once from a dataset, read back whole; pre-card checkpoints still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.policy_api.card import CARD_FILE, CardError, CheckpointCard, ObservationFeature, card_from_dataset


def dataset(root: Path) -> Path:
    meta = root / "meta"
    meta.mkdir(parents=True)
    (meta / "scene.json").write_text(json.dumps({"cameras": [{"name": "overhead"}]}))
    (meta / "stats.json").write_text(json.dumps({"action": {"mean": [1.0] * 6}}))
    (meta / "block_positions.json").write_text(json.dumps({"block_positions": [[0.2, 0.01], [0.19]]}))
    features = {
        "observation.state": {"shape": [6]},
        "observation.images.overhead": {"shape": [96, 128, 3]},
        "action": {"shape": [6]},
        "timestamp": {"shape": [1]},
    }
    (meta / "info.json").write_text(json.dumps({"features": features}))
    return root


def test_a_card_from_its_dataset_round_trips_through_its_file(tmp_path: Path) -> None:
    card = card_from_dataset(dataset(tmp_path / "data"), step=300, task="pick", extra={"policy_type": "act"})
    assert card.scene == {"cameras": [{"name": "overhead"}]} and card.action_stats == {"mean": [1.0] * 6}
    assert card.block_positions == [[0.2, 0.01]]  # the malformed entry is dropped
    assert card.observation_features == (
        ObservationFeature("observation.state", (6,)),
        ObservationFeature("observation.images.overhead", (96, 128, 3)),
    )
    assert card.action_space == "joint" and card.dataset == str((tmp_path / "data").absolute())
    card.write(tmp_path / "checkpoint")
    assert not (tmp_path / "checkpoint" / (CARD_FILE + ".partial")).exists()
    assert CheckpointCard.read(tmp_path / "checkpoint") == card


def test_a_checkpoint_from_before_cards_reads_its_files(tmp_path: Path) -> None:
    assert CheckpointCard.read(tmp_path) is None
    (tmp_path / "scene.json").write_text(json.dumps({"cameras": []}))
    (tmp_path / "block_positions.json").write_text(json.dumps([[0.2, 0.0]]))
    expected = CheckpointCard(scene={"cameras": []}, block_positions=[[0.2, 0.0]])
    assert CheckpointCard.read(tmp_path) == expected


def test_a_corrupt_card_is_named_in_one_line(tmp_path: Path) -> None:
    (tmp_path / CARD_FILE).write_text("{not json")
    with pytest.raises(CardError, match=rf"{CARD_FILE} is not valid JSON.*copy it again") as raised:
        CheckpointCard.read(tmp_path)
    assert "\n" not in str(raised.value)
