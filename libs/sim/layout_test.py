import numpy as np

from libs.sim.layout import JOINT_LIMITS, joints_env_to_rad, joints_rad_to_env


def test_units_round_trip_and_gripper_scale():
    joints = np.array([10.0, -20.0, 30.0, 45.0, -90.0, 40.0], dtype=np.float32)
    assert np.allclose(joints_rad_to_env(joints_env_to_rad(joints)), joints, atol=1e-4)
    closed, opened = JOINT_LIMITS[5]
    assert (closed, opened) == (0.0, 100.0)
    assert np.isclose(joints_env_to_rad([0, 0, 0, 0, 0, 0])[5], -0.17453)
    assert np.isclose(joints_env_to_rad([0, 0, 0, 0, 0, 100])[5], 1.74533)
