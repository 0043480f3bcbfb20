import copy
from dataclasses import replace

import mujoco
import numpy as np
import pytest

from libs.sim.env import HOME_JOINTS, SimInputError, SO101PickPlaceEnv
from libs.sim.gl import GLBackendError
from libs.sim.layout import ee_action
from libs.sim.scene_config import SceneConfig


@pytest.fixture(scope="module")
def env():
    environment = SO101PickPlaceEnv(max_steps=20)
    yield environment
    environment.close()


@pytest.fixture(scope="module")
def headless_ee_env():
    environment = SO101PickPlaceEnv(action_space="ee", render=False, max_steps=20)
    yield environment
    environment.close()


def test_observation_keys_shapes_and_dtypes(env):
    observation, info = env.reset(seed=0)
    assert set(observation) == {
        "observation.state",
        "observation.images.overhead",
        "observation.images.wrist",
        "task",
    }
    state = observation["observation.state"]
    assert state.shape == (6,) and state.dtype == np.float32
    assert np.allclose(state, HOME_JOINTS, atol=2.0)
    for camera in ("overhead", "wrist"):
        image = observation[f"observation.images.{camera}"]
        assert image.shape == (96, 128, 3) and image.dtype == np.uint8
        assert image.std() > 5  # an actual picture, not a blank buffer
    assert env.observation_space.contains({k: v for k, v in observation.items()})
    assert info["outcome"] is None


def test_depth_gets_its_own_key_in_metres():
    scene = SceneConfig().with_image_size(24, 32)
    scene = replace(scene, cameras=(replace(scene.cameras[0], depth=True), scene.cameras[1]))
    environment = SO101PickPlaceEnv(scene=scene)
    try:
        observation, _ = environment.reset(seed=1)
        depth = observation["observation.images.overhead_depth"]
        assert depth.shape == (24, 32) and depth.dtype == np.float32
        # The overhead camera is 0.55 m above the table: the table is about that far away.
        assert 0.3 < float(np.median(depth)) < 0.6
        assert "observation.images.wrist_depth" not in observation
        assert observation["observation.images.overhead"].shape == (24, 32, 3)
    finally:
        environment.close()


def test_same_seed_and_actions_replay_the_same_trajectory(headless_ee_env):
    def trajectory(seed):
        observation, _ = headless_ee_env.reset(seed=seed)
        states = [observation["observation.state"]]
        start = headless_ee_env.ee_position
        for step in range(8):
            position = start + np.array([0.0, 0.004 * step, -0.005 * step])
            action = ee_action(position, [0.3, 0, -0.95], 60.0)
            observation, *_ = headless_ee_env.step(action.astype(np.float32))
            states.append(observation["observation.state"])
        return np.array(states), headless_ee_env.block_position, headless_ee_env.bowl_position

    first, second, other = trajectory(5), trajectory(5), trajectory(6)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)
    assert not np.allclose(first[1], other[1])  # another seed puts the block elsewhere


def test_reset_can_pin_the_block_for_grid_evaluations(headless_ee_env):
    headless_ee_env.reset(seed=3, options={"block_xy": (0.2, -0.08)})
    assert np.allclose(headless_ee_env.block_position[:2], (0.2, -0.08), atol=0.002)
    pinned_bowl = headless_ee_env.bowl_position.copy()
    distance = np.linalg.norm(pinned_bowl[:2] - np.array([0.2, -0.08]))
    assert distance >= headless_ee_env.scene.min_block_bowl_distance_m
    headless_ee_env.reset(seed=3, options={"block_xy": (0.2, -0.08)})
    assert np.array_equal(headless_ee_env.bowl_position, pinned_bowl)  # still a function of the seed
    # Keys of wrappers (LeRobot's vector env adds its own) are ignored, as gymnasium envs do.
    headless_ee_env.reset(seed=3, options={"lerobot_new_rollout": True})
    with pytest.raises(SimInputError, match="two finite metres"):
        headless_ee_env.reset(seed=3, options={"block_xy": (0.2, float("nan"))})


def test_control_step_on_a_copy_leaves_the_env_untouched(headless_ee_env):
    headless_ee_env.reset(seed=2)
    before = copy.copy(headless_ee_env.data)
    qpos, ctrl, time = before.qpos.copy(), before.ctrl.copy(), before.time
    steps_before = headless_ee_env.tracker.steps
    scratch = copy.copy(headless_ee_env.data)
    for _ in range(3):
        headless_ee_env.control_step(scratch, ee_action([0.2, 0.05, 0.05], [0.3, 0.1, -0.95], 0.0))
    assert np.array_equal(headless_ee_env.data.qpos, qpos)
    assert np.array_equal(headless_ee_env.data.ctrl, ctrl)
    assert headless_ee_env.data.time == time
    assert headless_ee_env.tracker.steps == steps_before
    assert not np.allclose(scratch.qpos, qpos)
    # ...and stepping the env afterwards matches stepping a fresh copy: no hidden state was changed.
    replay = copy.copy(headless_ee_env.data)
    action = ee_action([0.22, 0.0, 0.08], [0.3, 0.0, -0.95], 50.0)
    headless_ee_env.control_step(replay, action)
    headless_ee_env.step(action)
    assert np.array_equal(replay.qpos, headless_ee_env.data.qpos)


def test_bad_actions_and_seeds_get_one_line(env, headless_ee_env):
    env.reset(seed=0)
    with pytest.raises(SimInputError, match=r"shape \(5,\), expected \(6,\).*shoulder_pan"):
        env.step(np.zeros(5, np.float32))
    with pytest.raises(SimInputError, match="one row per step"):
        env.step(np.zeros((2, 6), np.float32))
    with pytest.raises(SimInputError, match="NaN/inf in elbow_flex"):
        env.step(np.array([0, 0, np.nan, 0, 0, 0], np.float32))
    with pytest.raises(SimInputError, match="seed must be an int, got float"):
        env.reset(seed=1.5)
    with pytest.raises(SimInputError, match="seed must be an int, got str"):
        env.reset(seed="3")
    headless_ee_env.reset(seed=0)
    with pytest.raises(SimInputError, match="tail is at its position"):
        headless_ee_env.step(np.array([0.2, 0, 0.1, 0.2, 0, 0.1, 50], np.float32))
    with pytest.raises(SimInputError, match=r"expected \(7,\) for action_space='ee'"):
        headless_ee_env.step(np.zeros(6, np.float32))


def test_unknown_camera_names_the_fix(env):
    with pytest.raises(SimInputError, match="unknown camera 'front': this scene has overhead, wrist"):
        SO101PickPlaceEnv(cameras=["front"])
    with pytest.raises(SimInputError, match="unknown camera 'front'"):
        env.render_camera("front")


def test_camera_subset_and_headless_mode():
    environment = SO101PickPlaceEnv(cameras=["wrist"], render=False)
    observation, _ = environment.reset(seed=0)
    assert set(observation) == {"observation.state", "task"}
    assert environment.scene.camera_names == ("wrist",)
    assert environment.render_camera("wrist").shape == (96, 128, 3)  # on demand still works
    environment.close()


def test_missing_gl_backend_names_the_packages(monkeypatch):
    def no_gl(*args, **kwargs):
        raise RuntimeError("Cannot initialize a EGL device display.")

    monkeypatch.setattr(mujoco, "Renderer", no_gl)
    environment = SO101PickPlaceEnv(cameras=["overhead"])
    with pytest.raises(GLBackendError, match=r"MUJOCO_GL=egl.*libegl1 libgl1-mesa-dri.*libosmesa6"):
        environment.reset(seed=0)
    observation, _ = SO101PickPlaceEnv(render=False).reset(seed=0)
    assert "observation.state" in observation


def test_step_before_reset_and_truncation():
    environment = SO101PickPlaceEnv(render=False, max_steps=3)
    with pytest.raises(SimInputError, match="before reset"):
        environment.step(HOME_JOINTS)
    environment.reset(seed=0)
    results = [environment.step(HOME_JOINTS) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]
    assert results[-1][4]["outcome"] == "never_picked_up"
    figures = environment.episode_figures()
    assert figures.steps == 3 and not figures.picked and figures.ik_failures == 0


def test_environment_state_is_the_block_pose_and_bowl_position_when_the_scene_asks() -> None:
    from libs.sim.layout import ENVIRONMENT_STATE_DIM, ENVIRONMENT_STATE_NAMES

    state_env = SO101PickPlaceEnv(scene=SceneConfig().state_based(), max_steps=5)
    try:
        observation, _ = state_env.reset(seed=3)
        assert set(observation) == {"observation.state", "observation.environment_state", "task"}
        vector = observation["observation.environment_state"]
        assert vector.shape == (ENVIRONMENT_STATE_DIM,) == (len(ENVIRONMENT_STATE_NAMES),)
        assert vector.dtype == np.float32
        assert np.allclose(vector[:3], state_env.block_position, atol=1e-6)
        assert np.isclose(np.linalg.norm(vector[3:7]), 1.0, atol=1e-5) and vector[3] >= 0
        assert np.allclose(vector[7:], state_env.bowl_position[:2], atol=1e-6)
        assert "observation.environment_state" in state_env.observation_space.spaces
        observation, *_ = state_env.step(HOME_JOINTS)
        moved = observation["observation.environment_state"]
        assert np.allclose(moved[:3], state_env.block_position, atol=1e-6)
    finally:
        state_env.close()
    # Images stay the default: nothing privileged unless the scene asks for it.
    assert "observation.environment_state" not in SO101PickPlaceEnv(render=False).observation_space.spaces


def test_images_are_drawn_on_demand_and_equal_eager_ones():
    from libs.policy_api.lazy_observation import LazyObservation

    scene = SceneConfig().with_image_size(24, 32)
    lazy = SO101PickPlaceEnv(scene=scene, max_steps=10)
    eager = SO101PickPlaceEnv(scene=scene, max_steps=10, image_rendering="eager")
    try:
        pairs = [(lazy.reset(seed=4)[0], eager.reset(seed=4)[0])]
        for _ in range(3):
            on_demand, drawn = pairs[-1]
            assert isinstance(on_demand, LazyObservation) and isinstance(drawn, dict)
            assert set(on_demand) == set(drawn)
            assert len(on_demand.undrawn_keys) == 2  # nothing drawn until read
            for key in drawn:
                np.testing.assert_array_equal(np.asarray(on_demand[key]), np.asarray(drawn[key]))
            pairs.append((lazy.step(HOME_JOINTS)[0], eager.step(HOME_JOINTS)[0]))
    finally:
        lazy.close()
        eager.close()


def test_an_observation_held_across_steps_shows_its_own_moment():
    scene = SceneConfig().with_image_size(24, 32)
    lazy = SO101PickPlaceEnv(scene=scene, max_steps=10)
    eager = SO101PickPlaceEnv(scene=scene, max_steps=10, image_rendering="eager")
    target = HOME_JOINTS.copy()
    target[0] = 30.0  # the arm swings: every step's picture differs
    try:
        held = [lazy.reset(seed=0)[0]] + [lazy.step(target)[0] for _ in range(3)]
        expected = [eager.reset(seed=0)[0]] + [eager.step(target)[0] for _ in range(3)]
        lazy.reset(seed=1)
        for observation, drawn in zip(held, expected, strict=True):  # first read after the env moved on
            for key in ("observation.images.overhead", "observation.images.wrist"):
                np.testing.assert_array_equal(observation[key], drawn[key])
        assert not np.array_equal(held[0]["observation.images.wrist"], held[3]["observation.images.wrist"])
    finally:
        lazy.close()
        eager.close()


def test_unknown_image_rendering_is_one_line():
    with pytest.raises(SimInputError, match="image_rendering 'lazy' is unknown: use 'on_demand'"):
        SO101PickPlaceEnv(image_rendering="lazy")  # type: ignore[arg-type]
