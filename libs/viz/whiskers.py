"""Whiskers: the path each predicted action chunk would take, forward-simulated from a copy of the state.

At every inference the whole chunk is run from a full copy of the live simulator state
(``mujoco.mj_copyData`` into one preallocated scratch ``MjData``) through the env's ``Physics``
(``libs.sim.physics``) — the control step the env itself runs: the policy's action space (IK for ``ee``),
the 30 Hz control rate and its physics substeps — and the end-effector path, the block and the gripper
are recorded after each step. The live episode is never touched: the scratch data is the only thing
stepped (``libs/viz/whiskers_test.py`` checks bit-identical trajectories with and without whiskers).

Two modes:
- ``dynamic``: full physics with contacts, the chunk executed exactly as the env would execute it. Its
  first ``n_action_steps`` steps reproduce the executed path; the rest is what the policy intends.
- ``kinematic``: the joints are placed at each step's targets (IK for ``ee``) and only forward kinematics
  runs — no dynamics, no contacts, no gravity sag, the block never moves. Cheaper, and labelled
  "kinematic (no contacts)" in every output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import mujoco
import numpy as np

from libs.errors import LabError
from libs.sim.layout import gripper_rad_to_env
from libs.sim.play.observers import EpisodeObserver, InferenceEvent, StepEvent

WhiskerMode = Literal["dynamic", "kinematic"]
WHISKER_MODES: tuple[str, ...] = ("dynamic", "kinematic")
#: How the mode is named in every output (file names, plots, videos, reports).
MODE_LABELS: dict[str, str] = {
    "dynamic": "dynamic (physics + contacts)",
    "kinematic": "kinematic (no contacts, joints placed at targets)",
}
WHISKERS_FILE = "whiskers.npz"


class WhiskerError(LabError, ValueError):
    """Whiskers cannot be recorded or read; the message names the problem and the fix."""


def check_mode(mode: str) -> WhiskerMode:
    if mode not in WHISKER_MODES:
        raise WhiskerError(f"whisker mode {mode!r} is unknown: use one of {', '.join(WHISKER_MODES)}")
    return mode  # type: ignore[return-value]


@dataclass
class ChunkForecast:
    """One predicted chunk and where it would take the arm (all positions world frame, metres)."""

    env_step: int  # env steps executed before this inference
    actions: np.ndarray  # (T, action_dim) as the policy returned them, env units
    ee_start: np.ndarray  # (3,) gripper frame at inference
    ee_path: np.ndarray  # (T, 3) gripper frame after each predicted step
    gripper_command: np.ndarray  # (T,) commanded opening 0–100 (the action's last entry)
    gripper_opening: np.ndarray  # (T,) simulated gripper opening 0–100 after each step
    block_start: np.ndarray  # (3,) block centre at inference
    block_path: np.ndarray  # (T, 3) block centre after each step (constant in kinematic mode)
    ik_failures: int = 0

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])


@dataclass
class WhiskerEpisode:
    """Every forecast of one episode plus the path actually taken (index 0 = after reset)."""

    mode: WhiskerMode
    seed: int
    action_space: str
    chunk_length: int
    n_action_steps: int
    bowl_position: np.ndarray
    forecasts: list[ChunkForecast] = field(default_factory=list)
    actual_ee: list[np.ndarray] = field(default_factory=list)
    actual_gripper: list[float] = field(default_factory=list)
    actual_block: list[np.ndarray] = field(default_factory=list)
    #: Full qpos after reset and after every step: enough to re-render the episode afterwards.
    actual_qpos: list[np.ndarray] = field(default_factory=list)
    executed_actions: list[np.ndarray] = field(default_factory=list)
    policy: str = ""
    checkpoint_id: str = ""
    outcome: str | None = None

    @property
    def mode_label(self) -> str:
        return MODE_LABELS[self.mode]

    @property
    def steps(self) -> int:
        return len(self.executed_actions)

    @property
    def block_start(self) -> np.ndarray:
        return self.actual_block[0] if self.actual_block else np.full(3, np.nan)

    def forecast_at(self, step: int) -> int | None:
        """Index of the forecast in force at env step ``step`` (the last inference at or before it)."""
        index = None
        for i, forecast in enumerate(self.forecasts):
            if forecast.env_step <= step:
                index = i
            else:
                break
        return index

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """One ``.npz``: forecasts padded to the longest chunk (NaN), lengths kept."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        longest = max((f.length for f in self.forecasts), default=0)
        action_dim = self.forecasts[0].actions.shape[1] if self.forecasts else 0

        def padded(name: str, width: int | None) -> np.ndarray:
            shape = (len(self.forecasts), longest) + ((width,) if width else ())
            out = np.full(shape, np.nan, dtype=np.float64)
            for i, forecast in enumerate(self.forecasts):
                out[i, : forecast.length] = getattr(forecast, name)
            return out

        meta = {
            "mode": self.mode,
            "seed": self.seed,
            "action_space": self.action_space,
            "chunk_length": self.chunk_length,
            "n_action_steps": self.n_action_steps,
            "policy": self.policy,
            "checkpoint_id": self.checkpoint_id,
            "outcome": self.outcome,
        }
        np.savez_compressed(
            path,
            meta=np.array(json.dumps(meta)),
            bowl_position=np.asarray(self.bowl_position, dtype=np.float64),
            forecast_env_step=np.array([f.env_step for f in self.forecasts], dtype=np.int64),
            forecast_length=np.array([f.length for f in self.forecasts], dtype=np.int64),
            forecast_ik_failures=np.array([f.ik_failures for f in self.forecasts], dtype=np.int64),
            forecast_actions=padded("actions", action_dim),
            forecast_ee_start=np.array([f.ee_start for f in self.forecasts]).reshape(-1, 3),
            forecast_ee_path=padded("ee_path", 3),
            forecast_gripper_command=padded("gripper_command", None),
            forecast_gripper_opening=padded("gripper_opening", None),
            forecast_block_start=np.array([f.block_start for f in self.forecasts]).reshape(-1, 3),
            forecast_block_path=padded("block_path", 3),
            actual_ee=np.asarray(self.actual_ee, dtype=np.float64).reshape(-1, 3),
            actual_gripper=np.asarray(self.actual_gripper, dtype=np.float64),
            actual_block=np.asarray(self.actual_block, dtype=np.float64).reshape(-1, 3),
            actual_qpos=np.asarray(self.actual_qpos, dtype=np.float64),
            executed_actions=np.asarray(self.executed_actions, dtype=np.float64).reshape(
                len(self.executed_actions), action_dim
            ),
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> WhiskerEpisode:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, KeyError) as error:
            raise WhiskerError(
                f"cannot read whiskers from {path} ({type(error).__name__}): delete it and record again"
            ) from error
        meta = json.loads(str(arrays["meta"]))
        forecasts = []
        for i, length in enumerate(arrays["forecast_length"]):
            n = int(length)
            forecasts.append(
                ChunkForecast(
                    env_step=int(arrays["forecast_env_step"][i]),
                    actions=arrays["forecast_actions"][i, :n].astype(np.float32),
                    ee_start=arrays["forecast_ee_start"][i],
                    ee_path=arrays["forecast_ee_path"][i, :n],
                    gripper_command=arrays["forecast_gripper_command"][i, :n],
                    gripper_opening=arrays["forecast_gripper_opening"][i, :n],
                    block_start=arrays["forecast_block_start"][i],
                    block_path=arrays["forecast_block_path"][i, :n],
                    ik_failures=int(arrays["forecast_ik_failures"][i]),
                )
            )
        return cls(
            mode=check_mode(meta["mode"]),
            seed=int(meta["seed"]),
            action_space=meta["action_space"],
            chunk_length=int(meta["chunk_length"]),
            n_action_steps=int(meta["n_action_steps"]),
            bowl_position=arrays["bowl_position"],
            forecasts=forecasts,
            actual_ee=list(arrays["actual_ee"]),
            actual_gripper=[float(v) for v in arrays["actual_gripper"]],
            actual_block=list(arrays["actual_block"]),
            actual_qpos=list(arrays["actual_qpos"]),
            executed_actions=list(arrays["executed_actions"]),
            policy=meta.get("policy", ""),
            checkpoint_id=meta.get("checkpoint_id", ""),
            outcome=meta.get("outcome"),
        )


class WhiskerSimulator:
    """Forward-simulates chunks from copies of an env's state in one preallocated scratch ``MjData``."""

    def __init__(self, env: Any, mode: str = "dynamic") -> None:
        self.env = getattr(env, "unwrapped", env)
        self.mode = check_mode(mode)
        self.physics = self.env.physics
        self.model = self.physics.model
        self.scratch = mujoco.MjData(self.model)

    def forecast(
        self, chunk: np.ndarray, env_step: int, live_data: mujoco.MjData | None = None
    ) -> ChunkForecast:
        """The chunk's predicted path from ``live_data`` (default: the env's), which is only read."""
        live = self.env.data if live_data is None else live_data
        actions = np.asarray(chunk, dtype=np.float32)
        if actions.ndim != 2 or actions.shape[0] == 0:
            raise WhiskerError(f"a chunk must be (T, action_dim) with T >= 1, got shape {actions.shape}")
        physics, scratch = self.physics, self.scratch
        rows = np.asarray([self.env.validate_action(action) for action in actions])
        action_space = self.env.action_space_name
        mujoco.mj_copyData(scratch, self.model, live)
        if self.mode == "kinematic":
            # Positions from this qpos (after mj_step they lag it by one substep): the block then stays put.
            physics.kinematics(scratch)
        length = actions.shape[0]
        ee_path = np.empty((length, 3))
        opening = np.empty(length)
        block_path = np.empty((length, 3))
        ee_start = physics.ee_position(scratch)
        block_start = physics.block_position(scratch)
        ik_failures = 0
        # Joint chunks need no IK: every row's ctrl is computed at once (bit-identical to the control step's
        # row by row), leaving only the physics in the loop — this is what keeps a dynamic whisker at the
        # cost of bare physics.
        joint_ctrl = physics.joint_ctrl(rows) if self.mode == "dynamic" and action_space == "joint" else None
        step = physics.control_step if self.mode == "dynamic" else physics.kinematic_step
        for row in range(length):
            if joint_ctrl is not None:
                physics.hold_ctrl(scratch, joint_ctrl[row])
            else:
                ik_failures += int(step(scratch, rows[row], action_space).ik_failed)
            ee_path[row] = scratch.site_xpos[physics.ee_site]
            opening[row] = scratch.qpos[physics.gripper_qpos]
            block_path[row] = scratch.xpos[physics.block_body]
        return ChunkForecast(
            env_step=int(env_step),
            actions=actions.copy(),
            ee_start=ee_start,
            ee_path=ee_path,
            gripper_command=actions[:, -1].astype(np.float64),
            gripper_opening=np.asarray(gripper_rad_to_env(opening), dtype=np.float64),
            block_start=block_start,
            block_path=block_path,
            ik_failures=ik_failures,
        )


class WhiskerRecorder(EpisodeObserver):
    """Collects a ``WhiskerEpisode`` while the episode loop plays one episode, as one of its observers
    (``libs.evaluation.play.whiskers`` passes it): the first inference (env step 0, right after reset)
    starts the episode, each inference adds a forecast, each step adds the state actually reached.
    """

    def __init__(self, mode: str = "dynamic", *, policy: str = "", checkpoint_id: str = "") -> None:
        self.mode = check_mode(mode)
        self.policy = policy
        self.checkpoint_id = checkpoint_id
        self.env: Any = None
        self.simulator: WhiskerSimulator | None = None
        self.episode: WhiskerEpisode | None = None

    def _bind(self, env: Any) -> WhiskerSimulator:
        env = getattr(env, "unwrapped", env)
        if self.simulator is None or self.env is not env:
            self.env = env
            self.simulator = WhiskerSimulator(env, self.mode)
        return self.simulator

    def on_inference(self, event: InferenceEvent) -> None:
        """At each inference: forecast the chunk just predicted from the live state (only read)."""
        simulator = self._bind(event.env)
        chunk = np.asarray(event.chunk)
        if event.env_step == 0:
            self._start_episode(chunk.shape[0])
        elif self.episode is None:
            raise WhiskerError("whiskers joined mid-episode: attach the recorder before the episode starts")
        self.episode.forecasts.append(simulator.forecast(chunk, event.env_step))  # type: ignore[union-attr]

    def on_step(self, event: StepEvent) -> None:
        """After every executed action: the state actually reached."""
        if self.episode is None:
            raise WhiskerError("a step before the first inference: attach the recorder before the episode")
        self.episode.executed_actions.append(np.asarray(event.action, dtype=np.float32).copy())
        self._record_actual()

    def _start_episode(self, chunk_length: int) -> None:
        env = self.env
        self.episode = WhiskerEpisode(
            mode=self.mode,
            seed=int(env.episode_seed) if env.episode_seed is not None else -1,
            action_space=env.action_space_name,
            chunk_length=int(chunk_length),
            n_action_steps=0,  # set by finish(): the loop's events do not carry the spec
            bowl_position=env.data.xpos[env.physics.bowl_body].copy(),
            policy=self.policy,
            checkpoint_id=self.checkpoint_id,
        )
        self._record_actual()

    def _record_actual(self) -> None:
        physics, data = self.env.physics, self.env.data
        episode = self.episode
        assert episode is not None
        episode.actual_ee.append(physics.ee_position(data))
        episode.actual_gripper.append(float(physics.joint_state(data)[5]))
        episode.actual_block.append(physics.block_position(data))
        episode.actual_qpos.append(data.qpos.copy())

    def finish(self, outcome: str | None, n_action_steps: int) -> WhiskerEpisode:
        if self.episode is None:
            raise WhiskerError("the episode ended before any inference: nothing to draw")
        self.episode.outcome = outcome
        self.episode.n_action_steps = int(n_action_steps)
        episode, self.episode = self.episode, None
        return episode
