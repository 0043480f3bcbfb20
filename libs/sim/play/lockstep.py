"""Several episodes of one policy in lockstep, one ``infer_batch`` call for every observation due.

A worker holding one checkpoint can step several envs together and hand the policy every observation that
needs a new chunk in one call (``BatchPolicy``: LeRobot and JAX adapters). On a CPU that amortises each
call's fixed cost (pre/post-processing, Python, small matrix products); on a GPU it is the difference
between an idle and a busy device. Each episode is an ``EpisodePlay`` of its own — seed, reset (a fresh
``EpisodeState`` whose seed is drawn as ``policy.reset()`` would draw it), action queue, observers — exactly
as ``play_episode`` plays it; an episode that ends leaves the batch and the others go on. The LeRobot and
JAX adapters draw each episode's sampling noise from its own seed (Diffusion by DDIM, SmolVLA, Pi0, the JAX
flow-matching policy), so every episode computes the chunks it computes alone, as a deterministic policy
(ACT) does, up to the floating-point order of a batched matrix product
(``tests:identical_outcomes_lockstep``). Diffusion by DDPM, which draws noise at every denoising step,
shares its global generator across a batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from libs.policy_api.contracts import ContractViolation
from libs.policy_api.types import BatchPolicy, EpisodeState
from libs.sim.play.episode import EpisodePlay, EpisodeStart, PlayedEpisode
from libs.sim.play.evaluable_env import EvaluableEnv
from libs.sim.play.observers import EpisodeObserver


def supports_batches(policy: Any) -> bool:
    """True when ``policy`` (or the policy an ``EpisodeGuardedPolicy`` wraps) takes a batch per call."""
    return isinstance(getattr(policy, "inner", policy), BatchPolicy)


def play_lockstep(
    policy: Any,
    envs: Sequence[EvaluableEnv],
    starts: Sequence[EpisodeStart],
    observers: Sequence[Sequence[EpisodeObserver]] | None = None,
) -> list[PlayedEpisode]:
    """Play ``starts[i]`` in ``envs[i]`` with ``observers[i]``, all together (module docstring); the played
    episodes in the given order."""
    inner = getattr(policy, "inner", policy)
    if not isinstance(inner, BatchPolicy):
        raise ContractViolation(
            f"{type(inner).__name__} has no infer_batch/new_episode: run its episodes one at a time"
        )
    if len(envs) != len(starts) or not envs:
        raise ValueError(f"one env per episode: {len(envs)} envs for {len(starts)} episodes")
    observers = observers if observers is not None else [() for _ in starts]
    plays = [
        EpisodePlay(env, inner.spec, start, episode_observers)
        for env, start, episode_observers in zip(envs, starts, observers, strict=True)
    ]
    states: dict[int, EpisodeState] = {}
    for index, play in enumerate(plays):
        # The episode seed policy.reset() would draw, from the global RNG just seeded with the episode's.
        play.begin(lambda index=index: states.__setitem__(index, _new_episode(inner)))
    active = list(range(len(plays)))
    while active:
        due = [index for index in active if plays[index].due]
        if due:
            observations = [plays[index].before_inference() for index in due]
            before = time.perf_counter()
            raw_chunks = inner.infer_batch(observations, [states[index] for index in due])
            latency = time.perf_counter() - before
            del observations
            for index, raw_chunk in zip(due, raw_chunks, strict=True):
                plays[index].take(raw_chunk, latency, states[index].normalized_inputs)
        active = [index for index in active if plays[index].played is None]
        for index in active:
            plays[index].advance()
        active = [index for index in active if plays[index].played is None]
    return [play.played for play in plays]  # type: ignore[misc]


def _new_episode(policy: BatchPolicy) -> EpisodeState:
    return policy.new_episode(int(np.random.randint(0, 2**31 - 1)))
