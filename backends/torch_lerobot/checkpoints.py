"""Where things live in a LeRobot training run, and the files this lab adds beside each checkpoint.

LeRobot's layout: ``<run>/checkpoints/<NNNNNN>/pretrained_model/`` holds ``config.json``,
``model.safetensors``, ``train_config.json`` and the processor pipelines (``policy_preprocessor.json``,
``policy_postprocessor.json`` and their ``*.safetensors`` state, which carries the normalisation stats).
Beside those this lab keeps the checkpoint's card (``libs.policy_api.card``: the training dataset's scene,
stats and block positions, its observation features and action space), so an evaluation can compare scenes
and stats without finding the dataset again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from libs.policy_api.card import CheckpointCard, card_from_dataset
from libs.policy_api.registry import PolicyLoadError
from libs.policy_api.types import ENVIRONMENT_STATE_KEY

PRETRAINED_DIR_NAME = "pretrained_model"
CHECKPOINTS_DIR_NAME = "checkpoints"
LAST_CHECKPOINT_LINK = "last"
PREPROCESSOR_FILE = "policy_preprocessor.json"
POSTPROCESSOR_FILE = "policy_postprocessor.json"
TRAIN_CONFIG_FILE = "train_config.json"


class CheckpointError(PolicyLoadError):
    """A checkpoint directory is missing, incomplete or not LeRobot's layout; the message names the fix."""


def _numeric_step_dirs(checkpoints_dir: Path) -> list[Path]:
    return sorted(
        (child for child in checkpoints_dir.iterdir() if child.is_dir() and child.name.isdigit()),
        key=lambda child: int(child.name),
    )


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Every ``checkpoints/NNNNNN`` directory of a run, in step order."""
    checkpoints_dir = Path(run_dir) / CHECKPOINTS_DIR_NAME
    if not checkpoints_dir.is_dir():
        raise CheckpointError(
            f"{run_dir} has no {CHECKPOINTS_DIR_NAME}/ folder: pass a LeRobot training run dir"
        )
    return _numeric_step_dirs(checkpoints_dir)


def resolve_pretrained_dir(path: str | Path) -> Path:
    """``pretrained_model`` dir, a ``checkpoints/NNNNNN`` dir, or a run dir (-> its last checkpoint)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist: pass a LeRobot run or checkpoint directory")
    if (path / "config.json").is_file():
        return path
    if (path / PRETRAINED_DIR_NAME / "config.json").is_file():
        return path / PRETRAINED_DIR_NAME
    checkpoints_dir = path / CHECKPOINTS_DIR_NAME
    if checkpoints_dir.is_dir():
        last = checkpoints_dir / LAST_CHECKPOINT_LINK
        steps = _numeric_step_dirs(checkpoints_dir)
        candidate = last.resolve() if last.exists() else (steps[-1] if steps else None)
        if candidate is not None and (candidate / PRETRAINED_DIR_NAME / "config.json").is_file():
            return candidate / PRETRAINED_DIR_NAME
    raise CheckpointError(
        f"{path} is not a LeRobot checkpoint: expected config.json in it, in {PRETRAINED_DIR_NAME}/, "
        f"or a {CHECKPOINTS_DIR_NAME}/NNNNNN/{PRETRAINED_DIR_NAME}/ below it"
    )


def step_from_dir(pretrained_dir: Path) -> int | None:
    """The training step, read from the ``NNNNNN`` folder name (None for a bare exported model)."""
    folder = pretrained_dir.parent.name if pretrained_dir.name == PRETRAINED_DIR_NAME else pretrained_dir.name
    return int(folder) if folder.isdigit() else None


def check_processor_files(pretrained_dir: Path) -> None:
    """Refuse a checkpoint without its processors: its actions would never be de-normalised."""
    missing = [
        name for name in (PREPROCESSOR_FILE, POSTPROCESSOR_FILE) if not (pretrained_dir / name).is_file()
    ]
    if missing:
        effects = []
        if PREPROCESSOR_FILE in missing:
            effects.append("its inputs would not be normalised")
        if POSTPROCESSOR_FILE in missing:
            effects.append("its actions would never be de-normalised")
        raise CheckpointError(
            f"checkpoint {pretrained_dir} lacks {', '.join(missing)}: without it {' and '.join(effects)}; "
            "use a checkpoint written by lerobot-train (>= 0.4) or copy the file from the training run's "
            "pretrained_model/"
        )


#: The post-processor step that de-normalises actions (LeRobot's registry name).
UNNORMALIZER_STEP = "unnormalizer_processor"


def check_action_unnormalizer(pretrained_dir: Path, action_normalization: str) -> None:
    """Refuse a post-processor that would hand out normalised actions: LeRobot's pipeline runs whatever steps
    the JSON lists, and its unnormalizer passes a feature it has no stats for through unchanged, so a
    missing step or missing action stats go unnoticed until the arm sits still at the joints' means."""
    if action_normalization.upper() == "IDENTITY":
        return
    pipeline = read_json_beside(pretrained_dir, POSTPROCESSOR_FILE) or {}
    steps = [step for step in pipeline.get("steps", []) if step.get("registry_name") == UNNORMALIZER_STEP]
    fix = (
        f"copy {POSTPROCESSOR_FILE} and its *_{UNNORMALIZER_STEP}.safetensors from the training run's "
        f"{PRETRAINED_DIR_NAME}/"
    )
    if not steps:
        raise CheckpointError(
            f"{pretrained_dir / POSTPROCESSOR_FILE} has no {UNNORMALIZER_STEP} step although the policy "
            f"learnt {action_normalization}-normalised actions: its actions would never be de-normalised "
            f"(they would stay within a few units of 0); {fix}"
        )
    state_file = steps[0].get("state_file")
    if state_file and (pretrained_dir / state_file).is_file():
        from safetensors import safe_open  # numpy framework: no torch needed here

        with safe_open(str(pretrained_dir / state_file), framework="numpy") as state:
            has_action_stats = any(key.startswith("action.") for key in state.keys())
        if not has_action_stats:
            raise CheckpointError(
                f"{pretrained_dir / state_file} holds no statistics for 'action': LeRobot's unnormalizer "
                f"would pass the normalised actions through unchanged; {fix}"
            )


def check_cameras_were_trained(
    pretrained_dir: Path, config_cameras: list[str], trained_features: list[str]
) -> None:
    """Refuse a config.json naming cameras its training data never had (the card lists the dataset's
    features): a config copied from another robot (Pi0's base_0_rgb / left_wrist_0_rgb / right_wrist_0_rgb)
    or edited by hand. Asking the scene for the extra camera would blame the scene."""
    trained = [name for name in trained_features if name.startswith("observation.images.")]
    extra = [key for key in config_cameras if key not in trained]
    if not trained or not extra:
        return
    names = ", ".join(key.removeprefix("observation.images.") for key in extra)
    had = ", ".join(key.removeprefix("observation.images.") for key in trained)
    raise CheckpointError(
        f"{pretrained_dir / 'config.json'} names camera(s) {names} that its training data never had (the "
        f"dataset had {had}): the config was edited or copied from another robot; remove them from its "
        "input_features, or let SmolVLA/Pi0 pad the missing views with blank images (empty_cameras: N)"
    )


def missing_camera_stats_line(
    pretrained_dir: Path, stats: dict[str, Any] | None, camera_keys: list[str], image_normalization: str
) -> str | None:
    """One line when the card has no statistics for cameras the policy reads (its training dataset's
    ``meta/stats.json`` lacked them: LeRobot v3 conversions often do), else None. Not a refusal: LeRobot
    trained and evaluates such a camera alike (IDENTITY, or passed through un-normalised), but the
    input-drift check has nothing to compare its images with, and says so."""
    if not stats:  # no card statistics at all: the input-drift check is skipped as a whole
        return None
    missing = [key for key in camera_keys if key not in stats]
    if not missing:
        return None
    if image_normalization.upper() == "IDENTITY":
        effect = "the policy does not normalise images by them, so its actions are unaffected"
    else:
        effect = (
            f"its {image_normalization} image normalisation was skipped in training and is skipped here alike"
        )
    return (
        f"{pretrained_dir}: card.json has no statistics for {', '.join(missing)} (the training dataset's "
        f"meta/stats.json lacked them): {effect}, but the input-drift check cannot compare these cameras "
        "with training (lighting, channel order, exchanged cameras); recompute the dataset's stats with "
        "`doctor --fix` before training"
    )


def write_card(
    dataset_root: Path,
    pretrained_dir: Path,
    extra: dict[str, Any] | None = None,
    object_state_from_cameras: bool = False,
) -> Path:
    """The checkpoint's card (from its training dataset), beside its weights. A policy that estimates the
    object state from its cameras (``object_state_estimator.py``) takes none from the scene: its card's
    scene and observation features say so, and an evaluation then runs without it."""
    card = card_from_dataset(dataset_root, step=step_from_dir(pretrained_dir), extra=extra)
    if object_state_from_cameras:
        card = card.with_fields(
            scene={**(card.scene or {}), "environment_state": False},
            observation_features=tuple(
                feature for feature in card.observation_features if feature.name != ENVIRONMENT_STATE_KEY
            ),
            extra={**card.extra, "object_state": "estimated from the cameras"},
        )
    return card.write(pretrained_dir)


def read_card(pretrained_dir: Path) -> CheckpointCard:
    """The card beside the weights (a pre-card checkpoint's scene.json/stats.json/block_positions.json);
    what it lacks is filled from the training dataset's ``meta/`` when ``train_config.json`` names one that
    still exists (checkpoints written before this lab kept any copies)."""
    card = CheckpointCard.read(pretrained_dir) or CheckpointCard()
    root = ((read_json_beside(pretrained_dir, TRAIN_CONFIG_FILE) or {}).get("dataset") or {}).get("root")
    if root and card.dataset is None:
        card = card.with_fields(dataset=str(Path(root).expanduser()))
    if root and (Path(root) / "meta").is_dir() and None in (card.scene, card.stats, card.block_positions):
        dataset = card_from_dataset(root)
        card = card.with_fields(
            scene=card.scene if card.scene is not None else dataset.scene,
            stats=card.stats if card.stats is not None else dataset.stats,
            block_positions=(
                card.block_positions if card.block_positions is not None else dataset.block_positions
            ),
        )
    return card.with_fields(step=step_from_dir(pretrained_dir)) if card.step is None else card


def read_json_beside(pretrained_dir: Path, name: str) -> Any | None:
    """A JSON file kept beside the checkpoint, or None."""
    path = pretrained_dir / name
    return read_json_file(path) if path.is_file() else None


def read_json_file(path: Path) -> Any:
    """A JSON file of a checkpoint or its dataset; a truncated or corrupt one is named in one line."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"{path} is not valid JSON ({error}): the file is truncated or corrupt; copy it again from the "
            "training run (or the dataset's meta/)"
        ) from None
