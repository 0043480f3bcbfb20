"""The sweep refuses, in one line, a checkpoint whose carried scene.json differs from its training
dataset's meta/scene.json (issue 16: an edited overhead FOV was evaluated without a word)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from libs.evaluation.plan.checkpoints import FoundCheckpoint
from libs.evaluation.plan.training_scene import TrainingSceneMismatch
from libs.evaluation.sweep import EnvSettings, EpisodeTask, EpisodeWorker
from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import register_backend
from libs.policy_api.types import CameraInput, PolicySpec
from libs.sim.env import HOME_JOINTS
from libs.sim.scene_config import SceneConfig

MAX_STEPS = 4


class CarriedScenePolicy:
    """Holds the home pose; its card carries ``scene`` and names the ``dataset`` it was trained on."""

    def __init__(self, scene: dict, dataset: Path) -> None:
        self.spec = PolicySpec(cameras=(CameraInput("overhead", 96, 128),), chunk_length=4, n_action_steps=4)
        self.card = CheckpointCard(scene=scene, dataset=str(dataset))

    def reset(self) -> None:
        pass

    def infer(self, observation) -> np.ndarray:
        return np.repeat(HOME_JOINTS[None, :], 4, axis=0).astype(np.float32)


def test_a_checkpoint_scene_edited_after_training_is_refused_in_one_line(tmp_path: Path) -> None:
    dataset = tmp_path / "data"
    SceneConfig().save(dataset / "meta" / "scene.json")
    fovy = SceneConfig().camera("overhead").fovy_deg
    overhead = dataclasses.replace(SceneConfig().camera("overhead"), fovy_deg=fovy + 6)
    edited = dataclasses.replace(SceneConfig(), cameras=(overhead,)).to_dict()
    pretrained = tmp_path / "run" / "checkpoints" / "000100" / "pretrained_model"
    pretrained.mkdir(parents=True)
    (pretrained / "scene.json").write_text(json.dumps(edited))  # a pre-card checkpoint's copy
    register_backend("test_edited_scene", lambda argument: CarriedScenePolicy(edited, dataset))
    found = FoundCheckpoint("000100", "test_edited_scene", 100, pretrained.parent)
    card = CarriedScenePolicy(edited, dataset).card
    worker = EpisodeWorker(EnvSettings(max_steps=MAX_STEPS))
    with pytest.raises(TrainingSceneMismatch, match=rf"fovy_deg: {fovy + 6:g} vs {fovy:g}.*cp .*--scene"):
        worker.run(EpisodeTask(found.planned(card, None), seed=0))
    # --scene chooses the scene on purpose: then only the cameras the policy reads are compared.
    scene = SceneConfig.from_dict(edited).save(tmp_path / "chosen.json")
    record = EpisodeWorker(EnvSettings(scene_path=str(scene), max_steps=MAX_STEPS)).run(
        EpisodeTask(found.planned(card, scene), seed=0)
    )
    assert record.steps == MAX_STEPS
