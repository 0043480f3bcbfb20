"""``ScriptedPolicy``: the privileged expert as a ``Policy`` (registered as backend ``"scripted"``).

It reads the block and bowl from the attached env (``NeedsEnv.attach_env`` is called after every
``env.reset``), plans IK waypoints (``libs.sim.expert``) and answers ``infer`` with a chunk of the next
``chunk_length`` actions of the plan, indexed by the env's step counter, so it stays on plan however many
actions of a chunk the harness executes. In ``ee`` mode the actions are the planned gripper poses; in
``joint`` mode each pose is solved to joint targets by IK, chained from the env's last joint targets.

Everything it reads from the env is ``privileged_state(env)``, a small map of numbers, so it can also be
served (``services/policy_server``): the client sends that map once after each reset (``attach_state``) and
with every observation (under ``ENV_STATE_KEY``); ``remote:`` does both when the server asks for it.

``scripted:noise=DEG`` is a deliberately degraded expert: Gaussian noise of DEG degrees is added to the arm
joints of every action (drawn from numpy's global generator, which the harness seeds per episode, so each
seed replays). It is a known-worse policy for checking evaluation tools against the expert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from libs.errors import LabError
from libs.policy_api.types import ENV_STATE_KEY, Observation, PolicySpec
from libs.sim.expert import ExpertPlan
from libs.sim.layout import ee_action, joints_rad_to_env
from scenes.so101.scene import bowl_floor_top_z

DEFAULT_CHUNK_LENGTH = 10
DEFAULT_N_ACTION_STEPS = 5


def privileged_state(env: Any) -> dict[str, Any]:
    """What the scripted expert reads from the simulator, as plain numbers (msgpack-able): the env's
    ``privileged_state()``."""
    return getattr(env, "unwrapped", env).privileged_state()


class ScriptedPolicyError(LabError, RuntimeError):
    """The scripted policy was used wrongly; the message names the fix."""


class ScriptedPolicy:
    """Policy + NeedsEnv: privileged pick-and-place expert with chunked output."""

    def __init__(
        self,
        action_space: str = "joint",
        cameras: tuple = (),
        chunk_length: int = DEFAULT_CHUNK_LENGTH,
        n_action_steps: int = DEFAULT_N_ACTION_STEPS,
        action_noise_deg: float = 0.0,
    ) -> None:
        self.action_noise_deg = float(action_noise_deg)
        self._spec = PolicySpec(
            cameras=tuple(cameras),
            action_dim=6 if action_space == "joint" else 7,
            action_space=action_space,  # type: ignore[arg-type]
            chunk_length=chunk_length,
            n_action_steps=n_action_steps,
        )
        self._env: Any = None
        self._plan: ExpertPlan | None = None
        self._ik: Any = None

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def reset(self) -> None:
        self._plan = None

    def attach_env(self, env: Any) -> None:
        """Plan the episode from the freshly reset env's privileged state."""
        self._env = env
        self.attach_state(privileged_state(env))

    def attach_state(self, state: Mapping[str, Any]) -> None:
        """Plan the episode from ``privileged_state`` of a freshly reset env (the served form)."""
        if state["action_space"] != self._spec.action_space:
            raise ScriptedPolicyError(
                f"scripted policy plans {self._spec.action_space!r} actions but the env takes "
                f"{state['action_space']!r}: make it with ScriptedPolicy(action_space="
                f"{state['action_space']!r})"
            )
        self._plan = ExpertPlan(
            start_position=np.asarray(state["ee_position"]),
            block_position=np.asarray(state["block_position"]),
            block_yaw=float(state["block_yaw"]),
            bowl_position=np.asarray(state["bowl_position"]),
            bowl_floor_z=bowl_floor_top_z(),
            block_size_m=float(state["block_size_m"]),
            # The ee action cannot set the wrist roll, so in ee mode the jaws keep the home roll.
            align_jaws=self._spec.action_space == "joint",
        )

    @property
    def plan(self) -> ExpertPlan | None:
        return self._plan

    def infer(self, observation: Observation) -> np.ndarray:
        if self._env is not None:
            state = privileged_state(self._env)
        else:
            state = observation.get(ENV_STATE_KEY)
        if self._plan is None or state is None:
            raise ScriptedPolicyError(
                "scripted policy has no plan: call policy.attach_env(env) after every env.reset() (served: "
                f"send privileged_state(env) with attach and under {ENV_STATE_KEY!r} with each observation)"
            )
        first_step = int(state["step"])
        steps = range(first_step, first_step + self._spec.chunk_length)
        targets = [self._plan.target(step) for step in steps]
        if self._spec.action_space == "ee":
            chunk = [ee_action(t.position, t.approach, t.gripper) for t in targets]
            return np.asarray(chunk, dtype=np.float32)
        chunk = self._joint_chunk(targets, np.asarray(state["arm_targets"]))
        if self.action_noise_deg > 0:
            chunk[:, :5] += np.random.normal(0.0, self.action_noise_deg, size=(len(chunk), 5))
        return chunk

    def _joint_chunk(self, targets: list, arm_targets: np.ndarray) -> np.ndarray:
        ik = self._get_ik()
        qpos = np.zeros(ik.model.nq)
        # Chain from the joint targets the env holds now, like the env's own ee-mode IK does.
        qpos[ik.arm_qpos] = arm_targets
        chunk = np.empty((len(targets), 6), dtype=np.float32)
        for row, target in enumerate(targets):
            solution = ik.solve(qpos, target.position, target.approach, x_axis=target.x_axis)
            qpos[ik.arm_qpos] = solution.arm_joints
            joints_rad = np.zeros(6)
            joints_rad[:5] = solution.arm_joints
            chunk[row] = joints_rad_to_env(joints_rad)
            chunk[row, 5] = target.gripper
        return chunk

    def _get_ik(self) -> Any:
        if self._ik is None:
            from libs.sim.physics import ArmKinematics

            self._ik = ArmKinematics().ik
        return self._ik
