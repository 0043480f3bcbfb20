"""Minimal episode loop for the sim's own tests, benchmark and expert check (the evaluation harness in
``libs.evaluation`` is the full one): reset, attach, run chunks of ``n_action_steps`` actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from libs.policy_api.types import NeedsEnv, Policy
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.outcome import EpisodeFigures


def run_episode(
    env: SO101PickPlaceEnv,
    policy: Policy,
    seed: int,
    on_step: Callable[[dict[str, Any], Any, dict[str, Any]], None] | None = None,
) -> EpisodeFigures:
    """One episode of ``policy`` from ``env.reset(seed=seed)``; ``on_step(obs, action, info)`` sees each."""
    observation, _ = env.reset(seed=seed)
    policy.reset()
    if isinstance(policy, NeedsEnv):
        policy.attach_env(env)
    done = False
    while not done:
        chunk = policy.infer(observation)
        for action in chunk[: policy.spec.n_action_steps]:
            observation, _, terminated, truncated, info = env.step(action)
            if on_step is not None:
                on_step(observation, action, info)
            done = terminated or truncated
            if done:
                break
    return env.episode_figures()
