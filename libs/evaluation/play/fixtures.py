"""Shared by the identical-outcomes tests (``tests/identical_outcomes*_test.py``): play a policy's episodes
through the harness and compare each seed's record and executed actions with the values pinned in
``identical_outcomes.json`` beside this file (recorded from the harness before its episode loops became
one).

Set ``PIN_OUTCOMES_TO=DIR`` to write the values a run computes to ``DIR/<name>.json`` instead of comparing
them (to pin a new policy; the pinned file is edited by hand, never rewritten by a test)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libs.sim.play.observers import EpisodeObserver, StepEvent

#: Record fields that measure time, not behaviour.
TIMING_FIELDS = ("wall_time_s", "latency_mean_ms", "latency_p95_ms")
#: Record fields that name the episode's task, not its behaviour, added after the pins were taken (the
#: pinned episodes are all controls: arm "").
LABEL_FIELDS = ("arm",)
PINS = Path(__file__).with_name("identical_outcomes.json")
#: Executed actions are compared to this many degrees (or metres): torch and MuJoCo may round the last
#: bits differently on another CPU, a changed loop moves whole steps.
ACTION_TOLERANCE = 1e-3


def pinned_episode(record: Mapping[str, Any], actions: Sequence[np.ndarray]) -> dict[str, Any]:
    """What is pinned of one episode: its record (timings and labels left out) and its executed actions."""
    kept = {key: value for key, value in record.items() if key not in (*TIMING_FIELDS, *LABEL_FIELDS)}
    stacked = np.asarray(actions, dtype=np.float64).reshape(len(actions), -1)
    return {"record": kept, "actions": np.round(stacked, 4).tolist()}


def check_pins(name: str, episodes: Mapping[str, dict[str, Any]]) -> None:
    """``episodes`` (seed label → ``pinned_episode``) equal the pinned values of ``name``."""
    out = os.environ.get("PIN_OUTCOMES_TO")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{name}.json").write_text(json.dumps(episodes, indent=None, sort_keys=True))
        return
    pinned = json.loads(PINS.read_text())[name]
    assert sorted(episodes) == sorted(pinned), name
    for label, episode in episodes.items():
        expected = pinned[label]
        where = f"{name} {label}"
        assert set(episode["record"]) == set(expected["record"]), where
        for key, value in expected["record"].items():
            got = episode["record"][key]
            if isinstance(value, float) and isinstance(got, float):
                assert abs(got - value) <= 1e-3, f"{where} {key}: {got} != {value}"
            else:
                assert got == value, f"{where} {key}: {got!r} != {value!r}"
        got_actions = np.asarray(episode["actions"], dtype=np.float64)
        want_actions = np.asarray(expected["actions"], dtype=np.float64)
        assert got_actions.shape == want_actions.shape, where
        np.testing.assert_allclose(got_actions, want_actions, atol=ACTION_TOLERANCE, err_msg=where)


class ExecutedActions(EpisodeObserver):
    """Every executed action of an episode."""

    def __init__(self) -> None:
        self.actions: list[np.ndarray] = []

    def on_step(self, event: StepEvent) -> None:
        self.actions.append(np.array(event.action, copy=True))


def play_pinned(policy: Any, env: Any, seeds: Sequence[int], **options: Any) -> dict[str, dict[str, Any]]:
    """Each seed's episode played by the harness in ``env``: seed label → ``pinned_episode``."""
    from libs.evaluation.play.evaluated_episode import evaluate_episode

    episodes = {}
    for seed in seeds:
        executed = ExecutedActions()
        result = evaluate_episode(policy, env, seed, observers=[executed], **options)
        episodes[f"seed {seed}"] = pinned_episode(result.record.to_dict(), executed.actions)
    return episodes


def play_pinned_lockstep(
    policy: Any, envs: Sequence[Any], seeds: Sequence[int], **options: Any
) -> dict[str, dict[str, Any]]:
    """The seeds played together in lockstep (one env each): seed label → ``pinned_episode``."""
    from libs.evaluation.play.evaluated_episode import evaluate_lockstep
    from libs.sim.play.episode import EpisodeStart

    executed: dict[int, list[np.ndarray]] = {seed: [] for seed in seeds}
    steppers = []
    for env, seed in zip(envs, seeds, strict=True):
        original = env.step

        def step(action: Any, original: Any = original, seed: int = seed) -> Any:
            executed[seed].append(np.array(action, copy=True))
            return original(action)

        env.step = step
        steppers.append(env)
    try:
        results = evaluate_lockstep(policy, envs, [EpisodeStart(seed) for seed in seeds], **options)
    finally:
        for env in steppers:
            del env.step
    return {
        f"lockstep seed {seed}": pinned_episode(result.record.to_dict(), executed[seed])
        for seed, result in zip(seeds, results, strict=True)
    }


#: A small ACT (LeRobot's resnet18 rather than the preset's GroupNorm encoder: on near-flat 48×64 images a
#: 1-step model's group statistics are tiny, and batch-size-dependent float summation moves its actions).
SMALL_ACT = {
    "dim_model": 64,
    "n_heads": 2,
    "dim_feedforward": 128,
    "n_encoder_layers": 1,
    "latent_dim": 8,
    "vision_backbone": "resnet18",
}


def check_policy_pins(name: str, policy: Any, scene: Any, seeds: Sequence[int], max_steps: int) -> None:
    """``policy``'s episodes on ``seeds`` in ``scene`` (one at a time, then in lockstep) equal the pins."""
    from libs.sim.env import SO101PickPlaceEnv

    envs = [SO101PickPlaceEnv(scene=scene, max_steps=max_steps) for _ in seeds]
    stats = policy.card.action_stats
    try:
        episodes = play_pinned(policy, envs[0], seeds, action_stats=stats)
        episodes.update(play_pinned_lockstep(policy, envs, seeds, action_stats=stats))
    finally:
        for env in envs:
            env.close()
    check_pins(name, episodes)
