"""What a sweep plays, decided before any episode runs: ``plan_sweep``.

The policy strings expand to their checkpoints, each with its card read and its scene decided once
(``libs.evaluation.plan.checkpoints``); each checkpoint is followed by its perturbation arms (the same policy
and checkpoint id in a perturbed env, on the same seeds: the arm is a field of the task key); every target
gets the same seeds (or, with ``--grid``, the same cells of its scene's block region), checkpoint-major so a
worker loads each policy once. How the tasks are played (all at once, or in rounds until a test decides)
is the schedule's (``libs.evaluation.plan.schedule``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from libs.evaluation.plan.checkpoints import CheckpointTarget, file_safe_id, plan_checkpoints
from libs.evaluation.plan.grid import GridSpec
from libs.evaluation.plan.select_best import check_select_best
from libs.evaluation.plan.stop_when_decided import UntilDecided
from libs.evaluation.plan.sweep_config import SweepConfig
from libs.evaluation.plan.tasks import EpisodeTask, SweepError
from libs.policy_api.card import dataset_block_positions


@dataclass(frozen=True)
class SweepPlan:
    #: Each checkpoint, then its perturbation arms.
    targets: list[CheckpointTarget]
    #: The checkpoints themselves (their ids), without the arms: what the report ranks and the test decides.
    controls: list[str]
    arms: list[str]
    tasks: list[EpisodeTask]
    grid: GridSpec | None
    #: Seeds per checkpoint planned (the budget with --until-decided).
    episodes: int
    #: Every task's key (checkpoint id, arm, seed): what the store holds of this sweep.
    keys: frozenset[tuple[str, str, int]] = field(init=False)
    #: File name (no suffix) -> the scene.json contents each checkpoint is evaluated in (an arm perturbs its
    #: checkpoint's scene as that scene's ``perturbations`` entry says): saved under ``OUT/scenes``.
    evaluated_scenes: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", frozenset(task.key for task in self.tasks))
        scenes = {file_safe_id(t.checkpoint_id): t.scene.config for t in self.targets if not t.arm}
        object.__setattr__(self, "evaluated_scenes", scenes)

    @property
    def seeds(self) -> list[int]:
        return sorted({task.seed for task in self.tasks})


def plan_sweep(config: SweepConfig) -> SweepPlan:
    """The sweep's targets and tasks (module docstring); bad combinations are one ``SweepError`` line."""
    if config.grid is not None and min(config.grid) < 1:
        raise SweepError(f"--grid {config.grid} needs at least 1×1 cells: e.g. --grid 5x5")
    if config.grid is None and config.episodes < 1:
        raise SweepError(f"--episodes {config.episodes} must be at least 1")
    # Each checkpoint's card is read and its scene decided here, once, for every later step.
    checkpoints = plan_checkpoints(config.policy, config.env.scene_path)
    if config.compare_to:
        checkpoints += plan_checkpoints(config.compare_to, config.env.scene_path)
    rule = config.until_decided
    if config.select_best is not None:
        ids = [target.checkpoint_id for target in checkpoints]
        check_select_best(ids, grid=config.grid is not None, until_decided=rule is not None)
    if rule is not None:
        check_until_decided(checkpoints, config, rule)
    arms = perturbation_arms(config)
    # Each checkpoint's arms right after it, so a worker loads each policy once (an arm only changes the env).
    targets = [
        variant for target in checkpoints for variant in [target, *(replace(target, arm=arm) for arm in arms)]
    ]
    episodes = rule.max_episodes if rule is not None else config.episodes
    if config.select_best is not None:
        episodes = config.select_best.max_episodes
    # The map is drawn over the first checkpoint's region (a run's checkpoints share their training scene).
    grid = GridSpec(*config.grid, block_region(targets[0])) if config.grid is not None else None
    return SweepPlan(
        targets=targets,
        controls=[target.checkpoint_id for target in checkpoints],
        arms=arms,
        tasks=plan_tasks(targets, config.base_seed, episodes, config.grid),
        grid=grid,
        episodes=episodes,
    )


def grid_points(
    grid: tuple[int, int], region_xy: tuple[tuple[float, float], tuple[float, float]]
) -> list[tuple[tuple[int, int], tuple[float, float]]]:
    """((column, row), (x, y)) for a columns × rows grid spanning the region, corners included."""
    columns, rows = grid
    (x_min, x_max), (y_min, y_max) = region_xy
    points = []
    for row in range(rows):
        for column in range(columns):
            x = x_min + (x_max - x_min) * (column / (columns - 1) if columns > 1 else 0.5)
            y = y_min + (y_max - y_min) * (row / (rows - 1) if rows > 1 else 0.5)
            points.append(((column, row), (round(x, 6), round(y, 6))))
    return points


def plan_tasks(
    targets: Sequence[CheckpointTarget], base_seed: int, episodes: int, grid: tuple[int, int] | None
) -> list[EpisodeTask]:
    """Checkpoint-major, so each worker moves through checkpoints in order (one load each); every
    checkpoint gets the same seeds (and, with a grid, the same cells over the block region of the scene it
    is evaluated in: the same positions for checkpoints evaluated in one scene)."""
    tasks = []
    for target in targets:
        if grid is not None:
            for index, (cell, xy) in enumerate(grid_points(grid, block_region(target))):
                tasks.append(EpisodeTask(target, base_seed + index, xy, cell))
        else:
            tasks.extend(EpisodeTask(target, base_seed + i) for i in range(episodes))
    return tasks


def block_region(target: CheckpointTarget) -> tuple[tuple[float, float], tuple[float, float]]:
    """The ``--grid`` region of the scene ``target`` is evaluated in (decided once, by planning)."""
    return target.scene.block_region()


def perturbation_arms(config: SweepConfig) -> list[str]:
    """The arm names to run: declared in the --scene, all of them for ``all``."""
    if not config.perturbations:
        return []
    if not config.env.scene_path:
        raise SweepError(
            "--perturbations needs --scene: a scene.json whose 'perturbations' list declares the arms "
            "(start from the checkpoint's own scene.json so the cameras match)"
        )
    from libs.sim.scene_config import SceneConfig

    scene = SceneConfig.load(config.env.scene_path)
    declared = [arm.name for arm in scene.perturbations]
    if tuple(config.perturbations) == ("all",):
        if not declared:
            raise SweepError(f"--perturbations all: {config.env.scene_path} declares no perturbations")
        return declared
    for name in config.perturbations:
        scene.perturbation(name)  # one line naming the declared arms when it is not one of them
    return list(dict.fromkeys(config.perturbations))


def check_until_decided(
    checkpoints: Sequence[CheckpointTarget], config: SweepConfig, rule: UntilDecided
) -> None:
    if config.grid is not None:
        raise SweepError("--until-decided runs random seeds in rounds: drop --grid (or --until-decided)")
    if len(checkpoints) != rule.checkpoints_needed:
        what = (
            "one checkpoint against --target-rate"
            if rule.target_rate is not None
            else "two checkpoints (--policy and --compare-to, or a run with exactly two checkpoints)"
        )
        named = ", ".join(target.checkpoint_id for target in checkpoints)
        raise SweepError(
            f"--until-decided compares {what}, but the policies name {len(checkpoints)}: {named}; "
            "point --policy (and --compare-to) at single checkpoint folders"
        )
    if len({target.checkpoint_id for target in checkpoints}) != len(checkpoints):
        raise SweepError(
            f"--policy and --compare-to name the same checkpoint id {checkpoints[0].checkpoint_id!r}: "
            "compare two different checkpoints"
        )


def training_block_positions(plan: SweepPlan, training_data: str | None) -> dict[str, Any]:
    """checkpoint id → the training episodes' initial block xy: --training-data's, else each card's."""
    shared = None
    if training_data:
        if not Path(training_data).exists():
            raise SweepError(
                f"--training-data {training_data} does not exist: pass a recorded dataset's root folder"
            )
        shared = dataset_block_positions(training_data)
    positions: dict[str, Any] = {}
    for target in plan.targets:  # an arm's target shares its checkpoint's card and id
        found = shared if shared is not None else (target.card.block_positions if target.card else None)
        if found is not None:
            positions[target.checkpoint_id] = found
    return positions
