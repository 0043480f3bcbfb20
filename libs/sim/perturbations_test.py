"""Each perturbation's effect on the scene, and its round trip through scene.json."""

from __future__ import annotations

import numpy as np
import pytest

from libs.policy_api.types import STATE_KEY
from libs.sim.env import HOME_JOINTS, SO101PickPlaceEnv
from libs.sim.perturbations import Perturbation
from libs.sim.scene_config import SceneConfig, SceneConfigError, default_cameras
from scenes.so101.scene import BLOCK_BODY

SMALL = SceneConfig(cameras=default_cameras(height=24, width=32))


def env_with(arm: Perturbation | None, render: bool = False, **kwargs) -> SO101PickPlaceEnv:
    scene = SceneConfig(cameras=SMALL.cameras, perturbations=(arm,) if arm else ())
    return SO101PickPlaceEnv(scene, render=render, perturbation=arm.name if arm else None, **kwargs)


def block_geoms(env: SO101PickPlaceEnv) -> np.ndarray:
    return np.flatnonzero(env.model.geom_bodyid == env.model.body(BLOCK_BODY).id)


def test_arms_are_declared_in_the_scene_and_round_trip_through_json(tmp_path):
    arms = (Perturbation("latency2", observation_latency_steps=2), Perturbation("dim", light_scale=0.4))
    scene = SceneConfig(perturbations=arms)
    loaded = SceneConfig.load(scene.save(tmp_path / "scene.json"))
    assert loaded.perturbations == arms
    assert scene.to_dict()["perturbations"][1] == {"name": "dim", "light_scale": 0.4}  # only what differs
    assert SceneConfig.from_dict(SceneConfig().to_dict()).perturbations == ()
    with pytest.raises(SceneConfigError, match="unknown perturbation 'fog'.*declares latency2, dim"):
        scene.perturbation("fog")
    with pytest.raises(SceneConfigError, match="unknown fields"):
        SceneConfig.from_dict(SceneConfig().to_dict() | {"perturbations": [{"name": "x", "fog": 1}]})
    with pytest.raises(SceneConfigError, match="light_scale must be > 0"):
        SceneConfig(perturbations=({"name": "dark", "light_scale": 0},))


def test_camera_jitter_moves_world_cameras_per_seed_reproducibly():
    arm = Perturbation("cams", camera_position_jitter_m=0.02, camera_fovy_jitter_deg=4.0)
    control, perturbed = env_with(None), env_with(arm)
    world = np.flatnonzero(perturbed.model.cam_bodyid == 0)
    wrist = np.flatnonzero(perturbed.model.cam_bodyid != 0)
    poses = []
    for seed in (0, 1, 0):
        control.reset(seed=seed)
        perturbed.reset(seed=seed)
        offset = perturbed.model.cam_pos[world] - control.model.cam_pos[world]
        fov = perturbed.model.cam_fovy - control.model.cam_fovy
        assert np.all(np.abs(offset) <= 0.02) and np.any(np.abs(offset) > 1e-4)
        assert np.all(np.abs(fov) <= 4.0) and np.any(np.abs(fov) > 1e-3)
        np.testing.assert_allclose(perturbed.model.cam_pos[wrist], control.model.cam_pos[wrist])
        poses.append(perturbed.model.cam_pos.copy())
    assert not np.allclose(poses[0], poses[1])  # another seed, another pose
    np.testing.assert_allclose(poses[0], poses[2])  # the same seed replays


def test_dimmer_lights_darken_the_image():
    control, dim = env_with(None, render=True), env_with(Perturbation("dim", light_scale=0.3), render=True)
    bright_frame = control.reset(seed=0)[0]["observation.images.overhead"]
    dim_frame = dim.reset(seed=0)[0]["observation.images.overhead"]
    assert dim_frame.mean() < 0.8 * bright_frame.mean()


def test_block_size_mass_friction_and_colour():
    arm = Perturbation(
        "heavy_big_slippery_green",
        block_size_scale=1.2,
        block_mass_scale=3.0,
        block_friction_scale=0.5,
        block_rgba=(0.1, 0.8, 0.1, 1.0),
    )
    control, perturbed = env_with(None), env_with(arm)
    block = control.model.body(BLOCK_BODY).id
    assert perturbed.scene.block_size_m == pytest.approx(1.2 * control.scene.block_size_m)
    np.testing.assert_allclose(
        perturbed.model.geom_size[block_geoms(perturbed)][:, 0],
        1.2 * control.model.geom_size[block_geoms(control)][:, 0],
    )
    assert perturbed.model.body_mass[block] == pytest.approx(3.0 * control.model.body_mass[block], rel=1e-6)
    np.testing.assert_allclose(
        perturbed.model.geom_friction[block_geoms(perturbed)],
        0.5 * control.model.geom_friction[block_geoms(control)],
    )
    np.testing.assert_allclose(perturbed.model.geom_rgba[block_geoms(perturbed)][0], [0.1, 0.8, 0.1, 1.0])
    # The block still rests on the table after reset (its half size is used for the spawn height).
    perturbed.reset(seed=3)
    assert perturbed.block_position[2] == pytest.approx(perturbed.scene.block_size_m / 2, abs=2e-3)


def test_observation_latency_shows_the_state_k_steps_ago():
    control, late = env_with(None), env_with(Perturbation("late", observation_latency_steps=2))
    control.reset(seed=0)
    first = late.reset(seed=0)[0][STATE_KEY]
    target = HOME_JOINTS.copy()
    target[0] = 30.0  # swing the shoulder: the state changes every step
    states, seen = [first], []
    for _ in range(5):
        seen.append(late.step(target)[0][STATE_KEY])
        states.append(control.step(target)[0][STATE_KEY])
    np.testing.assert_allclose(seen[0], first)  # not yet two steps of history: the reset observation
    np.testing.assert_allclose(seen[1], first)
    np.testing.assert_allclose(seen[4], states[3], atol=1e-5)  # after step 5: the state after step 3


def test_action_hold_repeats_the_last_action_for_k_steps():
    held = env_with(Perturbation("hold2", action_hold_steps=2))
    held.reset(seed=0)
    executed = []
    for step in range(6):
        target = HOME_JOINTS.copy()
        target[0] = float(step)  # a new action every step
        held.step(target)
        executed.append(round(float(np.degrees(held.data.ctrl[0])), 3))
    assert executed == [0.0, 0.0, 0.0, 3.0, 3.0, 3.0]


def test_action_noise_perturbs_joint_targets_reproducibly():
    noisy = env_with(Perturbation("noise", action_noise_deg=3.0))
    runs = []
    for seed in (5, 5, 6):
        noisy.reset(seed=seed)
        noisy.step(HOME_JOINTS)
        runs.append(np.degrees(noisy.data.ctrl[:5]).copy())
    differences = runs[0] - HOME_JOINTS[:5]
    assert np.all(np.abs(differences) < 15) and np.abs(differences).max() > 0.05
    np.testing.assert_allclose(runs[0], runs[1])  # the seed replays its noise
    assert not np.allclose(runs[0], runs[2])


def test_a_late_observation_shows_the_images_of_its_own_step():
    scene = SceneConfig().with_image_size(24, 32)
    late = SO101PickPlaceEnv(scene, perturbation=Perturbation("late", observation_latency_steps=1))
    control = SO101PickPlaceEnv(scene, image_rendering="eager")
    target = HOME_JOINTS.copy()
    target[0] = 30.0
    try:
        late.reset(seed=0)
        control.reset(seed=0)
        expected = control.step(target)[0]["observation.images.overhead"]
        late.step(target)
        # Handed out one step later, drawn from a copy of its own moment: the step-1 picture.
        seen = late.step(target)[0]["observation.images.overhead"]
        np.testing.assert_array_equal(seen, expected)
    finally:
        late.close()
        control.close()
