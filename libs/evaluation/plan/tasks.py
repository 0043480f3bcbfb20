"""What a sweep's workers are handed: ``EpisodeTask`` (a checkpoint target, its arm, and a seed) and the
``EnvSettings`` every worker builds its env from; ``SweepError``, the error planning and playing share."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from libs.config_flags import flag
from libs.errors import LabError
from libs.evaluation.plan.checkpoints import CheckpointTarget
from libs.evaluation.results.episode_record import RecordLabel
from libs.sim.play.episode import EpisodeStart


# Defined with the tasks, below planning and playing, so that both raise the same error.
class SweepError(LabError, RuntimeError):
    """The sweep cannot go on; the message is one line naming the problem and the fix."""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of episodes, e.g. 4")
    return value


@dataclass(frozen=True)
class EnvSettings:
    """How each worker builds its env (the action space and cameras come from the policy's spec)."""

    scene_path: str | None = field(
        default=None,
        metadata=flag(
            "scene.json to evaluate in; its cameras must match each checkpoint's training scene "
            "(default: the training scene each checkpoint's card carries, else the bench scene)",
            name="--scene",
        ),
    )
    max_steps: int | None = field(default=None, metadata=flag("episode step limit (default: the env's)"))
    task: str | None = field(default=None, metadata=flag("language prompt (default: the env's)"))
    check_scene: bool = field(
        default=True,
        metadata=flag(
            "allow cameras that differ from the checkpoint's training scene (deliberate shift experiments)",
            name="--no-scene-check",
        ),
    )
    #: Episodes of one checkpoint a worker plays together in lockstep, one batched inference for every
    #: observation due (policies that take batches: LeRobot, JAX; others play one at a time); 1 = one at
    #: a time. Sampling policies (Diffusion, flow matching) then draw one batch's noise together.
    lockstep_envs: int = field(
        default=1,
        metadata=flag(
            "episodes of one checkpoint each worker plays together, one batched inference for the "
            "observations due (LeRobot and JAX policies; default 1: one at a time)",
            parse=positive_int,
        ),
    )
    #: Score a checkpoint even when the env's inputs differ from its training data (the input-drift check,
    #: ``libs.evaluation.play.input_check``); the report then says so at the top.
    allow_input_drift: bool = field(
        default=False,
        metadata=flag(
            "evaluate even when the env's inputs differ from the checkpoint's training statistics (joint "
            "order, units, camera channels or order, lighting, control rate); the report says so at the top"
        ),
    )


@dataclass(frozen=True)
class EpisodeTask:
    target: CheckpointTarget
    seed: int
    block_xy: tuple[float, float] | None = None
    grid_cell: tuple[int, int] | None = None

    @property
    def arm(self) -> str:
        """The perturbation arm the checkpoint plays under ("" for its control)."""
        return self.target.arm

    @property
    def key(self) -> tuple[str, str, int]:
        """(checkpoint id, arm, seed): the results store's primary key (``EpisodeRecord.key``)."""
        return (self.target.checkpoint_id, self.arm, self.seed)

    @property
    def start(self) -> EpisodeStart:
        return EpisodeStart(self.seed, self.block_xy)

    def label(self, step: int | None) -> RecordLabel:
        return RecordLabel(self.target.checkpoint_id, step, self.grid_cell, self.arm)
