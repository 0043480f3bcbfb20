"""Checkpoint paths in LeRobot's layout: which directory a user may name, the step, the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from backends.torch_lerobot.checkpoints import (
    CheckpointError,
    check_action_unnormalizer,
    check_cameras_were_trained,
    check_processor_files,
    list_checkpoints,
    missing_camera_stats_line,
    read_card,
    resolve_pretrained_dir,
    step_from_dir,
    write_card,
)


def _fake_run(root: Path, steps: list[int]) -> Path:
    for step in steps:
        pretrained = root / "checkpoints" / f"{step:06d}" / "pretrained_model"
        pretrained.mkdir(parents=True)
        for name in ("config.json", "policy_preprocessor.json", "policy_postprocessor.json"):
            (pretrained / name).write_text("{}")
    return root


def test_run_dir_resolves_to_the_last_checkpoint_and_steps_come_from_folder_names(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "run", [500, 1000, 20000])
    assert resolve_pretrained_dir(run) == run / "checkpoints" / "020000" / "pretrained_model"
    (run / "checkpoints" / "last").symlink_to("001000")  # LeRobot's pointer wins over the numbers
    assert resolve_pretrained_dir(run) == run / "checkpoints" / "001000" / "pretrained_model"
    assert (
        resolve_pretrained_dir(run / "checkpoints" / "000500") == run / "checkpoints/000500/pretrained_model"
    )
    pretrained = run / "checkpoints" / "020000" / "pretrained_model"
    assert resolve_pretrained_dir(pretrained) == pretrained
    assert step_from_dir(pretrained) == 20000
    assert [path.name for path in list_checkpoints(run)] == ["000500", "001000", "020000"]


def test_unusable_paths_get_one_line_naming_the_layout(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_pretrained_dir(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="is not a LeRobot checkpoint") as raised:
        resolve_pretrained_dir(tmp_path)
    assert "\n" not in str(raised.value)


def test_missing_postprocessor_is_refused(tmp_path: Path) -> None:
    pretrained = _fake_run(tmp_path / "run", [10]) / "checkpoints" / "000010" / "pretrained_model"
    check_processor_files(pretrained)
    (pretrained / "policy_postprocessor.json").unlink()
    with pytest.raises(CheckpointError, match="would never be de-normalised"):
        check_processor_files(pretrained)


def test_a_postprocessor_that_would_not_denormalise_actions_is_refused(tmp_path: Path) -> None:
    pretrained = _fake_run(tmp_path / "run", [10]) / "checkpoints" / "000010" / "pretrained_model"
    state_file = "policy_postprocessor_step_0_unnormalizer_processor.safetensors"
    step = {"registry_name": "unnormalizer_processor", "config": {}, "state_file": state_file}
    device = {"registry_name": "device_processor", "config": {}}
    save_file({"action.mean": np.zeros(6, np.float32)}, pretrained / state_file)
    postprocessor = pretrained / "policy_postprocessor.json"
    postprocessor.write_text(json.dumps({"steps": [step, device]}))
    check_action_unnormalizer(pretrained, "MEAN_STD")
    save_file({"observation.state.mean": np.zeros(6, np.float32)}, pretrained / state_file)
    with pytest.raises(CheckpointError, match="no statistics for 'action'"):
        check_action_unnormalizer(pretrained, "MEAN_STD")
    postprocessor.write_text(json.dumps({"steps": [device]}))  # the step deleted by hand
    with pytest.raises(CheckpointError, match="would never be de-normalised") as raised:
        check_action_unnormalizer(pretrained, "MEAN_STD")
    assert "\n" not in str(raised.value)
    check_action_unnormalizer(pretrained, "IDENTITY")  # a policy trained on raw actions needs none


def test_cameras_the_card_has_no_stats_for_are_named_with_what_that_costs(tmp_path: Path) -> None:
    cameras = ["observation.images.overhead", "observation.images.wrist"]
    stats = {"observation.state": {"mean": [0.0]}, "observation.images.wrist": {"mean": [[[0.5]]] * 3}}
    line = missing_camera_stats_line(tmp_path, stats, cameras, "IDENTITY")
    assert line is not None and "no statistics for observation.images.overhead (" in line
    assert "its actions are unaffected" in line and "input-drift check cannot compare" in line
    assert "skipped in training and is skipped here alike" in str(
        missing_camera_stats_line(tmp_path, stats, cameras, "MEAN_STD")
    )
    assert missing_camera_stats_line(tmp_path, stats, cameras[1:], "IDENTITY") is None
    assert missing_camera_stats_line(tmp_path, None, cameras, "IDENTITY") is None  # no card stats at all


def test_a_config_naming_a_camera_the_training_data_never_had_is_refused(tmp_path: Path) -> None:
    trained = ["observation.state", "observation.images.overhead", "observation.images.wrist"]
    two = ["observation.images.overhead", "observation.images.wrist"]
    check_cameras_were_trained(tmp_path, two, trained)
    check_cameras_were_trained(tmp_path, [*two, "observation.images.side"], [])  # a card without features
    with pytest.raises(
        CheckpointError, match="names camera.s. side that its training data never had"
    ) as raised:
        check_cameras_were_trained(tmp_path, [*two, "observation.images.side"], trained)
    assert "empty_cameras" in str(raised.value) and "\n" not in str(raised.value)


def _dataset(root: Path) -> Path:
    meta = root / "meta"
    meta.mkdir(parents=True)
    (meta / "scene.json").write_text(json.dumps({"cameras": []}))
    (meta / "stats.json").write_text(json.dumps({"action": {"mean": [0.0]}}))
    (meta / "block_positions.json").write_text(json.dumps([[0.2, 0.0]]))
    features = {"observation.state": {"shape": [6]}, "action": {"shape": [7]}}
    (meta / "info.json").write_text(json.dumps({"features": features}))
    return root


def test_the_card_carries_the_dataset_and_is_read_back(tmp_path: Path) -> None:
    pretrained = tmp_path / "checkpoints" / "000040" / "pretrained_model"
    pretrained.mkdir(parents=True)
    write_card(_dataset(tmp_path / "data"), pretrained)
    card = read_card(pretrained)
    assert card.scene == {"cameras": []} and card.action_stats == {"mean": [0.0]}
    assert card.block_positions == [[0.2, 0.0]] and card.step == 40 and card.action_space == "ee"
    features = [(feature.name, feature.shape) for feature in card.observation_features]
    assert features == [("observation.state", (6,))]
    assert not (pretrained / "scene.json").exists()  # one file: the card


def test_a_checkpoint_from_before_cards_reads_its_files_and_then_its_dataset(tmp_path: Path) -> None:
    pretrained = tmp_path / "pretrained_model"
    pretrained.mkdir()
    (pretrained / "scene.json").write_text(json.dumps({"cameras": [{"name": "top"}]}))
    root = _dataset(tmp_path / "d")
    (pretrained / "train_config.json").write_text(json.dumps({"dataset": {"root": str(root)}}))
    card = read_card(pretrained)
    # Its own scene.json wins; what it lacks comes from the training dataset train_config.json names.
    assert card.scene == {"cameras": [{"name": "top"}]} and card.stats == {"action": {"mean": [0.0]}}
    assert card.block_positions == [[0.2, 0.0]] and card.step is None


def test_a_run_expands_in_lerobots_layout_each_checkpoint_once(tmp_path: Path) -> None:
    from backends.torch_lerobot.backend import find_checkpoints

    run = _fake_run(tmp_path / "act", [20000, 5000, 10000])
    (run / "checkpoints" / "last").symlink_to(run / "checkpoints" / "020000")
    found = find_checkpoints(run)
    steps = [(f.checkpoint_id, f.step) for f in found]
    assert steps == [("005000", 5000), ("010000", 10000), ("020000", 20000)]
    assert find_checkpoints(run / "checkpoints") == found
    pretrained = run / "checkpoints" / "010000" / "pretrained_model"
    (only,) = find_checkpoints(pretrained)
    assert (only.checkpoint_id, only.step, only.path) == ("010000", 10000, pretrained)
