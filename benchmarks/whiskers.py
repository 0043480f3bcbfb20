"""What a whisker costs: forward-simulating one 50-step chunk, against the bare physics of the same steps.

    ./pants run benchmarks:whiskers            # or --repeats 5 for a quick look

For each action space, the scripted expert plays a seed until it is about to grasp; the next 50 actions it
would send are the chunk. From that live state the benchmark times, per chunk:
- bare physics: ``mj_copyData`` into a scratch ``MjData`` and 50 × (set ``ctrl`` to the step's joint
  targets, ``mj_step`` × the env's substeps) — nothing else;
- env control steps: the same 50 actions through ``env.control_step`` on the scratch copy (adds action
  validation and, for ``ee``, the IK solve of every step — what any faithful forecast must pay);
- whiskers dynamic / kinematic: ``WhiskerSimulator.forecast`` (records the end-effector, gripper and block
  after each step).
The ratio column is whisker time / bare physics time; the target for the dynamic mode is ≤ 1.2×. For ``ee``
chunks the IK dominates, so the ratio against the env's own control steps is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import mujoco
import numpy as np
from rich.console import Console
from rich.table import Table

from libs.sim.env import SO101PickPlaceEnv
from libs.sim.layout import JOINT_NAMES, joints_env_to_rad
from libs.sim.scripted_policy import ScriptedPolicy
from libs.viz.whiskers import WhiskerSimulator
from scenes.so101.scene import PHYSICS_SUBSTEPS

CHUNK_STEPS = 50
#: Control steps played before the chunk starts: the approach, so the chunk covers descend + grasp + lift.
WARMUP_STEPS = 40
DYNAMIC_TARGET_RATIO = 1.2


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    work()  # warm caches (IK model build, first allocation)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _chunk_from_expert(env: SO101PickPlaceEnv, seed: int) -> tuple[mujoco.MjData, np.ndarray, np.ndarray]:
    """(live state at the chunk's start, the chunk's actions, the joint targets those actions produce)."""
    policy = ScriptedPolicy(action_space=env.action_space_name, chunk_length=CHUNK_STEPS)
    observation, _ = env.reset(seed=seed)
    policy.reset()
    policy.attach_env(env)
    played = 0
    while played < WARMUP_STEPS:
        for action in policy.infer(observation)[: policy.spec.n_action_steps]:
            observation, *_ = env.step(action)
            played += 1
            if played == WARMUP_STEPS:
                break
    start = mujoco.MjData(env.model)
    mujoco.mj_copyData(start, env.model, env.data)
    actions = np.asarray(policy.infer(observation), dtype=np.float32)[:CHUNK_STEPS]
    if len(actions) < CHUNK_STEPS:
        raise SystemExit(f"the expert's chunk has {len(actions)} steps, expected {CHUNK_STEPS}")
    # The joint targets each action becomes (IK solved once, outside the timed bare-physics loop).
    scratch = mujoco.MjData(env.model)
    mujoco.mj_copyData(scratch, env.model, start)
    targets = np.array(
        [joints_env_to_rad(env.control_step(scratch, action).joint_targets) for action in actions]
    )
    actuators = [env.model.actuator(name).id for name in JOINT_NAMES]
    ctrl_range = env.model.actuator_ctrlrange[actuators]
    targets = np.clip(targets, ctrl_range[:, 0], ctrl_range[:, 1])  # as the env clips its ctrl
    return start, actions, targets


def measure(action_space: str, repeats: int, seed: int) -> dict[str, float]:
    env = SO101PickPlaceEnv(action_space=action_space, render=False, max_steps=10**6)
    try:
        start, actions, targets = _chunk_from_expert(env, seed)
        model = env.model
        actuators = np.array([model.actuator(name).id for name in JOINT_NAMES])
        scratch = mujoco.MjData(model)

        def bare_physics() -> None:
            mujoco.mj_copyData(scratch, model, start)
            for row in range(CHUNK_STEPS):
                scratch.ctrl[actuators] = targets[row]
                mujoco.mj_step(model, scratch, nstep=PHYSICS_SUBSTEPS)

        def env_control_steps() -> None:
            mujoco.mj_copyData(scratch, model, start)
            for action in actions:
                env.control_step(scratch, action)

        results = {
            "bare": _median_seconds(bare_physics, repeats),
            "control": _median_seconds(env_control_steps, repeats),
        }
        for mode in ("dynamic", "kinematic"):
            simulator = WhiskerSimulator(env, mode)
            results[mode] = _median_seconds(lambda s=simulator: s.forecast(actions, 0, start), repeats)
        return results
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Whisker cost per 50-step chunk vs bare physics.")
    parser.add_argument("--repeats", type=int, default=20, help="timed chunks per row (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    console = Console(width=120)
    title = f"one {CHUNK_STEPS}-step chunk ({PHYSICS_SUBSTEPS} physics substeps per step), median ms"
    table = Table(title=title)
    for column in ("action space", "what", "ms / chunk", "× bare physics", "× env control steps", "target"):
        table.add_column(column, justify="right")
    for action_space in ("joint", "ee"):
        results = measure(action_space, args.repeats, args.seed)
        bare, control = results["bare"], results["control"]
        rows = (
            ("bare physics (mj_step only)", bare, ""),
            ("env control steps", control, ""),
            ("whiskers dynamic", results["dynamic"], f"≤ {DYNAMIC_TARGET_RATIO}× bare"),
            ("whiskers kinematic (no contacts)", results["kinematic"], ""),
        )
        for label, seconds, target in rows:
            if target:
                ok = seconds / bare <= DYNAMIC_TARGET_RATIO
                target = f"{target}: {'met' if ok else 'MISSED'}"
            ratios = (f"{seconds / bare:.2f}", f"{seconds / control:.2f}")
            table.add_row(action_space, label, f"{1000 * seconds:.2f}", *ratios, target)
    console.print(table)
    console.print(
        "ee chunks pay the IK of every step in any faithful forecast; compare them with 'env control steps'."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
