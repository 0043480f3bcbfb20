"""lerobot-doctor, as PyPI ships it and run from its own resolve, on the datasets our recorder writes: an
RGB-D dataset (depth stored as LeRobot depth maps) and an end-effector dataset (no constant action
dimension) pass every check; a copy with a planted defect does not, so a pass means something."""

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from libs.datasets.record import record_scripted_dataset
from libs.sim.scene_config import SceneConfig
from services.eval.fixtures import own_environment

DOCTOR = Path("tests.lerobot_doctor/lerobot_doctor.pex")


def doctor(dataset: Path) -> dict:
    done = subprocess.run(
        [sys.executable, str(DOCTOR), "check", str(dataset), "--json"],
        capture_output=True,
        text=True,
        env=own_environment() | {"HF_HUB_OFFLINE": "1"},
        timeout=600,
    )
    assert done.stdout.strip().startswith("{"), f"lerobot-doctor printed no report: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def problems(report: dict) -> list[str]:
    return [
        f"{check['name']}: {message['severity']} {message['message']}"
        for check in report["checks"]
        for message in check["messages"]
        if message["severity"] not in ("PASS", "INFO")
    ]


@pytest.fixture(scope="module")
def small_scene() -> SceneConfig:
    return SceneConfig().with_image_size(48, 64)


def test_lerobot_doctor_passes_an_rgbd_dataset(tmp_path: Path, small_scene: SceneConfig) -> None:
    scene = replace(
        small_scene,
        cameras=tuple(replace(camera, depth=camera.name == "overhead") for camera in small_scene.cameras),
    )
    record_scripted_dataset(tmp_path / "rgbd", episodes=2, seed=0, scene=scene, progress=False)
    info = json.loads((tmp_path / "rgbd" / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.overhead_depth"]["info"]["is_depth_map"] is True
    report = doctor(tmp_path / "rgbd")
    assert report["overall_severity"] == "PASS" and problems(report) == []


def test_lerobot_doctor_passes_an_end_effector_dataset(tmp_path: Path, small_scene: SceneConfig) -> None:
    record_scripted_dataset(
        tmp_path / "ee", episodes=2, seed=0, scene=small_scene, action_space="ee", progress=False
    )
    report = doctor(tmp_path / "ee")
    assert report["overall_severity"] == "PASS" and problems(report) == []


def test_lerobot_doctor_fails_a_dataset_with_a_planted_defect(
    tmp_path: Path, small_scene: SceneConfig
) -> None:
    record_scripted_dataset(tmp_path / "good", episodes=2, seed=0, scene=small_scene, progress=False)
    shutil.copytree(tmp_path / "good", tmp_path / "bad")
    (tmp_path / "bad" / "meta" / "stats.json").unlink()
    assert problems(doctor(tmp_path / "bad")) != []
