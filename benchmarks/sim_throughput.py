"""How fast the simulation runs on this machine: physics, rendering, the full env, the scripted expert.

    ./pants run benchmarks:sim_throughput            # or: python -m benchmarks.sim_throughput --quick

Prints one rich table per topic: physics steps/s; render frames/s per camera at 96×128, 240×320 and
480×640 for RGB and depth, with the arm's simplified display meshes and with the original CAD meshes;
env steps/s (two cameras, and headless); scripted-expert episodes per minute; and the OpenGL backend.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import mujoco
import numpy as np
from rich.console import Console
from rich.table import Table

from libs.sim.env import HOME_JOINTS, SO101PickPlaceEnv
from libs.sim.gl import GLBackendError, gl_backend_name, gl_renderer_string, make_renderer
from libs.sim.layout import ee_action
from libs.sim.play.episode import play_episode
from libs.sim.scene_config import SceneConfig
from libs.sim.scripted_policy import ScriptedPolicy
from scenes.so101.scene import PHYSICS_SUBSTEPS, build_scene_spec

IMAGE_SIZES = ((96, 128), (240, 320), (480, 640))


def _rate(work: Callable[[], None], count: int, warmup: int = 2) -> float:
    """Calls of ``work`` per second over ``count`` calls (after ``warmup`` untimed ones)."""
    for _ in range(warmup):
        work()
    started = time.perf_counter()
    for _ in range(count):
        work()
    return count / (time.perf_counter() - started)


def physics_rate(seconds: float) -> tuple[float, float]:
    model = build_scene_spec(SceneConfig()).compile()
    data = mujoco.MjData(model)
    data.ctrl[:6] = np.radians(HOME_JOINTS[:6])
    steps = max(200, int(seconds * 5000))
    rate = _rate(lambda: mujoco.mj_step(model, data), steps)
    return rate, rate / PHYSICS_SUBSTEPS


def render_rates(frames: int) -> tuple[list[tuple[str, str, str, float, float]], str]:
    """(camera, size, modality, fps simplified, fps original) rows and the GL renderer string."""
    rows = []
    gl_string = ""
    models = {
        simplified: build_scene_spec(SceneConfig(simplify_render_meshes=simplified)).compile()
        for simplified in (True, False)
    }
    datas = {}
    for simplified, model in models.items():
        data = mujoco.MjData(model)
        data.qpos[:6] = np.radians(HOME_JOINTS[:6])
        data.qpos[5] = 1.0
        mujoco.mj_forward(model, data)
        datas[simplified] = data
    for height, width in IMAGE_SIZES:
        for camera in SceneConfig().camera_names:
            for depth in (False, True):
                fps = {}
                for simplified, model in models.items():
                    renderer = make_renderer(model, height, width)
                    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
                    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
                    if depth:
                        renderer.enable_depth_rendering()
                    data = datas[simplified]

                    def frame(renderer=renderer, data=data, camera=camera) -> None:
                        renderer.update_scene(data, camera=camera)
                        renderer.render()

                    fps[simplified] = _rate(frame, frames)
                    gl_string = gl_string or gl_renderer_string()
                    renderer.close()
                rows.append((camera, f"{height}×{width}", "depth" if depth else "rgb", fps[True], fps[False]))
    return rows, gl_string


def env_rates(steps: int) -> list[tuple[str, float]]:
    rows = []
    for label, kwargs, action in (
        # Every camera drawn every step (the default draws an image only when something reads it).
        ("joint, 2 cameras 96×128 RGB", {"image_rendering": "eager"}, HOME_JOINTS),
        ("joint, 2 cameras 96×128 RGB+depth", {"depth": True, "image_rendering": "eager"}, HOME_JOINTS),
        ("joint, 2 cameras 96×128 RGB, drawn on demand, none read", {}, HOME_JOINTS),
        ("joint, headless (render=False)", {"render": False}, HOME_JOINTS),
        ("ee (IK each step), headless", {"render": False, "action_space": "ee"}, None),
    ):
        scene = SceneConfig()
        if kwargs.pop("depth", False):
            scene = replace(scene, cameras=tuple(replace(c, depth=True) for c in scene.cameras))
        env = SO101PickPlaceEnv(scene=scene, max_steps=10**6, **kwargs)
        env.reset(seed=0)
        if action is None:
            # A slow circle above the table so the IK has to work every step.
            circle = iter(range(10**6))

            def step(env=env, circle=circle) -> None:
                t = next(circle) / 30.0
                position = [0.2 + 0.03 * np.cos(t), 0.03 * np.sin(t), 0.08]
                env.step(ee_action(position, [0.34, 0, -0.94], 50.0))

        else:

            def step(env=env, action=action) -> None:
                env.step(action)

        rows.append((label, _rate(step, steps)))
        env.close()
    return rows


def expert_rates(episodes: int) -> list[tuple[str, float, float, str]]:
    rows = []
    for action_space, render in (("joint", False), ("ee", False), ("joint", True)):
        env = SO101PickPlaceEnv(action_space=action_space, render=render, image_rendering="eager")
        policy = ScriptedPolicy(action_space=action_space)
        started = time.perf_counter()
        figures = [play_episode(policy, env, seed).figures for seed in range(episodes)]
        elapsed = time.perf_counter() - started
        successes = sum(f.outcome == "success" for f in figures)
        label = f"{action_space}, {'2 cameras 96×128' if render else 'headless'}"
        steps = sum(f.steps for f in figures)
        rows.append((label, 60.0 * episodes / elapsed, steps / elapsed, f"{successes}/{episodes}"))
        env.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Simulation throughput benchmark.")
    parser.add_argument("--quick", action="store_true", help="fewer frames/steps (noisier, ~1 min)")
    args = parser.parse_args(argv)
    frames, steps, episodes, physics_seconds = (15, 60, 3, 1.0) if args.quick else (60, 200, 10, 3.0)
    console = Console(width=120)
    try:
        physics, control = physics_rate(physics_seconds)
        render_rows, gl_string = render_rates(frames)
        env_rows = env_rates(steps)
        expert_rows = expert_rates(episodes)
    except GLBackendError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2

    console.print(
        f"GL backend: MUJOCO_GL={gl_backend_name()}  ({gl_string or 'renderer string unavailable'}); "
        f"CPU cores: {os.cpu_count()}; mujoco {mujoco.__version__}"
    )
    table = Table(title="physics (scene with arm, block, bowl)")
    table.add_column("physics steps/s", justify="right")
    table.add_column(f"control steps/s ({PHYSICS_SUBSTEPS} substeps)", justify="right")
    table.add_row(f"{physics:,.0f}", f"{control:,.0f}")
    console.print(table)

    table = Table(title="render frames/s per camera (shadows off, no multisampling)")
    for column in ("camera", "H×W", "modality", "simplified meshes", "original meshes", "gain"):
        table.add_column(column, justify="right")
    for camera, size, modality, simple, original in render_rows:
        table.add_row(
            camera, size, modality, f"{simple:,.0f}", f"{original:,.0f}", f"{simple / original:.2f}×"
        )
    console.print(table)

    table = Table(title="env.step() per second (30 Hz control)")
    table.add_column("configuration")
    table.add_column("steps/s", justify="right")
    table.add_column("× real time", justify="right")
    for label, rate in env_rows:
        table.add_row(label, f"{rate:,.0f}", f"{rate / 30.0:.1f}")
    console.print(table)

    table = Table(title=f"scripted expert ({episodes} episodes each)")
    for column in ("configuration", "episodes/min", "env steps/s", "success"):
        table.add_column(column, justify="right")
    for label, per_minute, per_second, success in expert_rows:
        table.add_row(label, f"{per_minute:,.1f}", f"{per_second:,.0f}", success)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
