"""One definition of the env's state and action layouts and their units.

The state and the ``joint`` action use LeRobot's SO-101 convention (``use_degrees=True``): the five arm
joints in degrees, the gripper as a 0–100 opening (0 closed, 100 open). The simulator works in radians;
arm joints map 1:1 (the menagerie model's joint zero is the middle of each calibrated range, as in
LeRobot's degree mode), and the gripper's joint range maps linearly onto 0–100.

The ``ee`` action is ``[x, y, z, tail_x, tail_y, tail_z, gripper]``: the gripper frame's position in metres
(world frame, robot base at the origin, table top at z = 0), the *tail* of its approach axis — the point
``EE_TAIL_DISTANCE_M`` behind the gripper frame along the axis the gripper points along (wrist →
fingertips), in the same frame and units — and the gripper opening 0–100. The approach direction the IK
(``libs.sim.ik``) solves for is ``position − tail``, normalised (``ee_approach``): the arm's five joints set
the gripper's position and this direction, never the roll about it, which the IK leaves free.

Why two points and not a unit vector: the scripted expert leans the gripper a fixed 20° from vertical, so
the unit vector's z component was a constant (−cos 20° = −0.9397, std 0) that mean/std normalisation divides
by ~0; any unit-vector or tilt/azimuth layout keeps such a constant. The tail's z is the gripper's height plus
that constant, so it varies as the gripper moves; every dimension is metres; and any two distinct points
are a valid direction (a policy's output needs no renormalisation; its tail distance need not be exact).
Datasets recorded with the old layout (``LEGACY_EE_ACTION_NAMES``) are rewritten by ``convert ee``.
"""

from __future__ import annotations

import numpy as np

#: Joint (and actuator) names in the menagerie model, in state/action order.
JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)
ARM_JOINT_NAMES: tuple[str, ...] = JOINT_NAMES[:5]
GRIPPER_JOINT_NAME = "gripper"
#: LeRobot's feature names for the SO-101 state/action vector.
STATE_FEATURE_NAMES: tuple[str, ...] = tuple(f"{name}.pos" for name in JOINT_NAMES)

EE_ACTION_NAMES: tuple[str, ...] = ("x", "y", "z", "tail_x", "tail_y", "tail_z", "gripper")
#: The ee layout before the tail point: a unit approach vector (its z was constant in expert data).
LEGACY_EE_ACTION_NAMES: tuple[str, ...] = (
    "x", "y", "z", "approach_x", "approach_y", "approach_z", "gripper",
)  # fmt: skip
#: How far behind the gripper frame the tail point lies on the approach axis (about the wrist's distance).
EE_TAIL_DISTANCE_M = 0.1

STATE_DIM = len(JOINT_NAMES)
JOINT_ACTION_DIM = len(JOINT_NAMES)
EE_ACTION_DIM = len(EE_ACTION_NAMES)
ACTION_DIMS: dict[str, int] = {"joint": JOINT_ACTION_DIM, "ee": EE_ACTION_DIM}

CONTROL_HZ = 30.0

GRIPPER_CLOSED = 0.0
GRIPPER_OPEN = 100.0

#: Joint ranges of the menagerie model's actuators (ctrlrange), radians.
JOINT_LIMITS_RAD: np.ndarray = np.array(
    [
        [-1.91986, 1.91986],
        [-1.74533, 1.74533],
        [-1.69, 1.69],
        [-1.65806, 1.65806],
        [-2.74385, 2.84121],
        [-0.17453, 1.74533],
    ]
)
_GRIPPER_LOW_RAD, _GRIPPER_HIGH_RAD = JOINT_LIMITS_RAD[5]

#: Joint limits in env units (degrees for the arm, 0–100 for the gripper), shape (6, 2).
JOINT_LIMITS: np.ndarray = np.vstack(
    [np.degrees(JOINT_LIMITS_RAD[:5]), np.array([[GRIPPER_CLOSED, GRIPPER_OPEN]])]
).astype(np.float32)
JOINT_LOWER: np.ndarray = JOINT_LIMITS[:, 0].copy()
JOINT_UPPER: np.ndarray = JOINT_LIMITS[:, 1].copy()

#: Bounds of the ee action: a workspace box around the robot (metres), the same box grown by the tail
#: distance for the tail, gripper 0–100.
EE_LOWER: np.ndarray = np.array([-0.5, -0.5, -0.05, -0.6, -0.6, -0.15, GRIPPER_CLOSED], dtype=np.float32)
EE_UPPER: np.ndarray = np.array([0.5, 0.5, 0.6, 0.6, 0.6, 0.7, GRIPPER_OPEN], dtype=np.float32)


def ee_action(position: np.ndarray, approach: np.ndarray, gripper: float) -> np.ndarray:
    """float32[7] ee action of a gripper frame at ``position`` pointing along ``approach`` (any length)."""
    position = np.asarray(position, dtype=np.float64)
    approach = np.asarray(approach, dtype=np.float64)
    approach = approach / max(float(np.linalg.norm(approach)), 1e-12)
    tail = position - EE_TAIL_DISTANCE_M * approach
    return np.concatenate([position, tail, [gripper]]).astype(np.float32)


def ee_approach(action: np.ndarray) -> np.ndarray:
    """The unit approach vector of an ee action (or a (T, 7) chunk): ``position − tail``, normalised."""
    action = np.asarray(action, dtype=np.float64)
    direction = action[..., :3] - action[..., 3:6]
    norms = np.linalg.norm(direction, axis=-1, keepdims=True)
    return direction / np.maximum(norms, 1e-12)


def ee_tail_distance(action: np.ndarray) -> np.ndarray:
    """Distance between an ee action's position and its tail (``EE_TAIL_DISTANCE_M`` when exact)."""
    action = np.asarray(action, dtype=np.float64)
    return np.linalg.norm(action[..., :3] - action[..., 3:6], axis=-1)


def gripper_rad_to_env(gripper_rad: float | np.ndarray) -> float | np.ndarray:
    """Gripper joint angle (rad) → opening 0–100."""
    return (gripper_rad - _GRIPPER_LOW_RAD) / (_GRIPPER_HIGH_RAD - _GRIPPER_LOW_RAD) * GRIPPER_OPEN


def gripper_env_to_rad(gripper_env: float | np.ndarray) -> float | np.ndarray:
    """Gripper opening 0–100 → joint angle (rad)."""
    return _GRIPPER_LOW_RAD + np.asarray(gripper_env) / GRIPPER_OPEN * (_GRIPPER_HIGH_RAD - _GRIPPER_LOW_RAD)


def joints_rad_to_env(joints_rad: np.ndarray) -> np.ndarray:
    """Six joint angles in radians → env units (float32[6])."""
    joints_rad = np.asarray(joints_rad, dtype=np.float64)
    out = np.empty(STATE_DIM, dtype=np.float32)
    out[:5] = np.degrees(joints_rad[:5])
    out[5] = gripper_rad_to_env(joints_rad[5])
    return out


def joints_env_to_rad(joints_env: np.ndarray) -> np.ndarray:
    """Six joint values in env units → radians (float64[6]); a (T, 6) chunk converts row by row."""
    joints_env = np.asarray(joints_env, dtype=np.float64)
    out = np.empty(joints_env.shape[:-1] + (STATE_DIM,), dtype=np.float64)
    out[..., :5] = np.radians(joints_env[..., :5])
    out[..., 5] = gripper_env_to_rad(joints_env[..., 5])
    return out


#: ``observation.environment_state`` (privileged object state, emitted when the scene config sets
#: ``environment_state``), float32 in this order: the block's centre in metres (world frame, table top at
#: z = 0), its orientation as a unit quaternion (w, x, y, z) with w >= 0, and the bowl's centre x, y in
#: metres. The bowl stands on the table, so its z (always 0) is left out: a constant dimension has zero
#: std and mean/std normalisation would divide by ~0.
ENVIRONMENT_STATE_NAMES: tuple[str, ...] = (
    "block_x",
    "block_y",
    "block_z",
    "block_qw",
    "block_qx",
    "block_qy",
    "block_qz",
    "bowl_x",
    "bowl_y",
)
ENVIRONMENT_STATE_DIM = len(ENVIRONMENT_STATE_NAMES)


def environment_state(
    block_position: np.ndarray, block_quat: np.ndarray, bowl_position: np.ndarray
) -> np.ndarray:
    """The ``observation.environment_state`` vector (layout: ``ENVIRONMENT_STATE_NAMES``)."""
    quat = np.asarray(block_quat, dtype=np.float64)
    quat = quat / max(float(np.linalg.norm(quat)), 1e-12)
    if quat[0] < 0:  # q and -q are the same rotation: keep one sign so the feature is continuous
        quat = -quat
    values = np.concatenate([np.asarray(block_position, dtype=np.float64)[:3], quat, bowl_position[:2]])
    return values.astype(np.float32)
