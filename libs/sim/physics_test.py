import mujoco
import numpy as np

from libs.sim.env import SO101PickPlaceEnv
from libs.sim.layout import ee_action
from libs.sim.physics import ArmKinematics


def test_arm_forward_kinematics_matches_the_scene() -> None:
    env = SO101PickPlaceEnv(render=False)
    env.reset(seed=3)
    pose = ArmKinematics().ee_poses(env.joint_state()[None])[0]
    np.testing.assert_allclose(pose[:3], env.ee_position, atol=1e-4)
    np.testing.assert_allclose(pose[3:], env.ee_approach, atol=1e-3)
    env.close()


def test_kinematic_step_places_the_arm_and_leaves_the_block() -> None:
    env = SO101PickPlaceEnv(action_space="ee", render=False)
    env.reset(seed=1)
    physics = env.physics
    scratch = mujoco.MjData(physics.model)
    mujoco.mj_copyData(scratch, physics.model, env.data)
    physics.kinematics(scratch)  # positions of this qpos: after mj_step they lag it by one substep
    block = physics.block_position(scratch)
    target = np.array([0.22, 0.03, 0.08])
    action = env.validate_action(ee_action(target, [0.0, 0.0, -1.0], 50.0))
    result = physics.kinematic_step(scratch, action, "ee")
    assert not result.ik_failed
    np.testing.assert_allclose(physics.ee_position(scratch), target, atol=5e-3)
    np.testing.assert_array_equal(physics.block_position(scratch), block)
    np.testing.assert_array_equal(scratch.qpos[physics.arm_qpos], scratch.ctrl[physics.actuators])
    env.close()
