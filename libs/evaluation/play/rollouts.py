"""A policy's rollouts recorded into a dataset (the data flywheel), played as the sweep plays episodes.

    ./pants run backends/torch_lerobot:rollouts -- --policy torch_lerobot:CKPT --out DIR --episodes N \\
        --keep success

The checkpoint is planned as the sweep plans one: its card read once and the scene decided from it
(``--scene``, else its training scene, else the bench scene), the recording scene checked against the
training scene's cameras, and every episode played by the episode loop with every contract check (an unsafe
chunk ends the episode as ``contract_violation``, which ``--keep success`` leaves out). The dataset writing,
``--keep`` judges and recovery noise are the recorder's (``libs.datasets.record``), and so is its
durability: a run killed midway keeps its finished episodes, and the same command with ``--resume`` records
the rest into the dataset an uninterrupted run writes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from libs.compute_threads import add_threads_flag, decide_and_apply
from libs.datasets.record import (
    RecordSummary,
    apply_scene_options,
    record_dataset,
    recording_options,
    recording_parser,
    run_recording,
)
from libs.evaluation.plan.checkpoints import plan_one_checkpoint
from libs.evaluation.play.episode_worker import check_against_training
from libs.evaluation.play.input_check import check_policy_inputs
from libs.policy_api.contracts import EpisodeGuardedPolicy
from libs.policy_api.registry import make_policy


def record_rollouts(
    root: str | Path,
    policy_uri: str,
    *,
    scene_path: str | Path | None = None,
    image_size: str | None = None,
    depth: bool = False,
    environment_state: bool = False,
    no_cameras: bool = False,
    check_scene: bool = True,
    action_space: str | None = None,
    **recording: Any,
) -> RecordSummary:
    """Rollouts of ``policy_uri`` in its decided scene (with the recorder's scene options applied) into a
    dataset at ``root``; ``recording`` goes to ``record_dataset`` (episodes, seed, keep, noise, ...)."""
    target = plan_one_checkpoint(policy_uri, scene_path)
    scene = apply_scene_options(target.scene.load(), image_size, depth, environment_state, no_cameras)
    policy = EpisodeGuardedPolicy(make_policy(policy_uri))
    if check_scene:
        check_against_training(scene, target, [camera.name for camera in policy.spec.cameras])
        check_policy_inputs(policy, target.card, scene, checkpoint_id=target.checkpoint_id)
    return record_dataset(
        root,
        policy,
        scene=scene,
        action_space=action_space,
        **recording,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``rollouts``: any policy's rollouts, each episode judged by the simulator (and ``--keep``)."""
    parser = recording_parser("rollouts", with_policy=True)
    add_threads_flag(parser)
    args = parser.parse_args(argv)

    def record() -> RecordSummary:
        decide_and_apply(1, args.threads)  # one model here, before its stack is imported
        return record_rollouts(
            args.out,
            args.policy,
            scene_path=args.scene,
            image_size=args.image_size,
            depth=args.depth,
            environment_state=args.environment_state,
            no_cameras=args.no_cameras,
            check_scene=not args.no_scene_check,
            action_space=args.action_space,
            **recording_options(args),
        )

    return run_recording(record)


if __name__ == "__main__":
    sys.exit(main())
