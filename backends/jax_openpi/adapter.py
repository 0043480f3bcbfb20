"""``jax_openpi:<checkpoint dir>`` → a shared ``Policy``.

The checkpoint's ``config.json`` rebuilds the model and the transforms; ``assets/norm_stats.json`` is
required (no silent un-normalised policy). ``infer`` runs the input pipeline (repack, gripper 0–1, normalise,
pad, resize), samples a chunk with Euler steps, then runs the *inverse* pipeline on {state, actions}
(unpad, de-normalise, absolute joints, gripper 0–100) and returns (action_horizon, 6) in env units.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from backends.jax_openpi import transforms as T
from backends.jax_openpi.checkpoints import (
    ASSETS_DIR,
    CONFIG_FILE,
    PARAMS_ITEM,
    load_config,
    read_json,
    restore_items,
)
from backends.jax_openpi.compilation_cache import enable_compilation_cache
from backends.jax_openpi.layout import CheckpointError, read_card, resolve_checkpoint_dir
from backends.jax_openpi.model import Observation, Pi0Policy
from backends.jax_openpi.model_io import model_observation, model_pipeline
from backends.jax_openpi.norm_stats import MissingNormStatsError, load_norm_stats
from libs.policy_api.card import CheckpointCard
from libs.policy_api.types import (
    ENVIRONMENT_STATE_KEY,
    IMAGE_KEY_PREFIX,
    STATE_KEY,
    CameraInput,
    EpisodeState,
    PolicySpec,
)
from libs.policy_api.types import Observation as EnvObservation


@dataclasses.dataclass
class JaxEpisode(EpisodeState):
    """The noise stream of one episode: chunk ``calls`` samples from ``fold_in(rng, calls)``."""

    rng: Any = None
    calls: int = 0


#: batches are padded to one of these sizes, so a server compiles the sampler a few times, not per size
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class JaxOpenpiPolicy:
    """A Pi0-style checkpoint as a Policy (+ HasCard, ReportsNormalizedInputs, BatchPolicy)."""

    def __init__(self, checkpoint: Path | str, seed: int = 0) -> None:
        directory = resolve_checkpoint_dir(checkpoint)
        self.directory = directory
        self.config = config = load_config(directory)
        try:
            self.norm_stats = load_norm_stats(
                directory / ASSETS_DIR, how_to_make="copy the training run's assets/norm_stats.json here"
            )
        except MissingNormStatsError as error:
            raise CheckpointError(str(error)) from error
        try:
            self._inputs = model_pipeline(config, self.norm_stats, resize=True)
        except T.TransformError as error:
            raise CheckpointError(f"checkpoint {directory}: {error}") from error
        enable_compilation_cache()

        abstract_model = nnx.eval_shape(lambda: Pi0Policy(config.model, rngs=nnx.Rngs(0)))
        graphdef, abstract_state = nnx.split(abstract_model)
        self.params = restore_items(directory, {PARAMS_ITEM: nnx.to_pure_dict(abstract_state)})[PARAMS_ITEM]
        num_steps = config.num_sample_steps

        def sample(params, noise, observation: Observation):
            model = nnx.merge(graphdef, params)
            return model.sample_actions(None, observation, num_steps=num_steps, noise=noise)

        self._sample = jax.jit(sample)
        self._outputs = self._inputs.inverse()
        self._seed = seed
        self._episode = self.new_episode(0)

        extra = read_json(directory / CONFIG_FILE) or {}
        height, width = extra.get("source_image_size") or config.model.image_size
        self._spec = PolicySpec(
            cameras=tuple(CameraInput(name, int(height), int(width)) for name in config.cameras),
            state_dim=config.env_action_dim,
            environment_state_dim=config.model.environment_state_dim,
            action_dim=config.env_action_dim,
            action_space="joint",
            chunk_length=config.model.action_horizon,
            n_action_steps=config.n_action_steps,
        )
        #: What the checkpoint carries from its dataset (``HasCard``), with its prompt and config name.
        self.card: CheckpointCard = read_card(directory).with_fields(
            task=extra.get("prompt"), extra={"config": config.name}
        )

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def reset(self) -> None:
        # Each call samples a whole chunk from fresh noise; the harness executes and re-plans, so there is
        # no queue or history to clear. The noise stream restarts from the episode's seed (the harness seeds
        # numpy's global RNG with it before reset), so an episode's actions do not depend on how many
        # episodes this worker ran before: 1 worker and 8 workers, or a resumed sweep, give the same result.
        self._episode = self.new_episode(int(np.random.randint(0, 2**31 - 1)))

    def new_episode(self, seed: int) -> JaxEpisode:
        return JaxEpisode(seed=seed, rng=jax.random.fold_in(jax.random.key(self._seed), seed))

    def infer(self, observation: EnvObservation) -> np.ndarray:
        return self.infer_batch([observation], [self._episode])[0]

    def infer_batch(
        self, observations: Sequence[EnvObservation], episodes: Sequence[EpisodeState]
    ) -> np.ndarray:
        """One sampler call for every observation; each row's noise comes from its own episode, drawn as a
        single ``infer`` draws it, so a batched chunk equals the chunk that episode would get alone."""
        samples = [self._inputs(_batch_of_one(observation)) for observation in observations]
        model = [model_observation(sample) for sample in samples]
        shape = (1, self.config.model.action_horizon, self.config.model.action_dim)
        noise = []
        scale = self.config.sample_noise_scale
        for episode, sample in zip(episodes, samples, strict=True):
            assert isinstance(episode, JaxEpisode), "episodes come from this policy's new_episode"
            noise.append(scale * jax.random.normal(jax.random.fold_in(episode.rng, episode.calls), shape))
            episode.calls += 1
            episode.normalized_inputs = self._normalized_inputs(sample)
        size = len(samples)
        padded = next((bucket for bucket in _BATCH_BUCKETS if bucket >= size), size)

        def stacked(field: str) -> jax.Array | None:
            rows = [getattr(m, field) for m in model]
            if rows[0] is None:  # no cameras, or no environment state, in this config
                return None
            return jax.numpy.asarray(np.concatenate(rows + [rows[-1]] * (padded - size)))

        noise_array = jax.numpy.concatenate(noise + [noise[-1]] * (padded - size))
        batch = Observation(stacked("images"), stacked("state"), stacked("environment_state"))
        actions = np.asarray(self._sample(self.params, noise_array, batch))[:size]
        chunks = []
        for row, sample in enumerate(samples):
            env_units = self._outputs({T.STATE: sample[T.STATE], T.ACTIONS: actions[row : row + 1]})
            chunks.append(np.asarray(env_units["action"][0], dtype=np.float32))
        return np.stack(chunks)

    def last_normalized_inputs(self) -> Mapping[str, np.ndarray]:
        return self._episode.normalized_inputs

    def _normalized_inputs(self, sample: Mapping[str, Any]) -> dict[str, np.ndarray]:
        inputs = {STATE_KEY: np.asarray(sample[T.STATE])[0, : self.config.env_action_dim]}
        if T.ENVIRONMENT_STATE in sample:
            inputs[ENVIRONMENT_STATE_KEY] = np.asarray(sample[T.ENVIRONMENT_STATE])[0]
        for name, key in zip(self.config.cameras, (T.BASE_IMAGE, T.WRIST_IMAGE), strict=False):
            inputs[f"{IMAGE_KEY_PREFIX}{name}"] = _unit_pixels(sample[key][0])
        return inputs


def _batch_of_one(observation: EnvObservation) -> dict[str, Any]:
    return {
        key: np.asarray(value)[None] if not isinstance(value, str) else value
        for key, value in observation.items()
        if key != "action"
    }


def _unit_pixels(image: np.ndarray) -> np.ndarray:
    """The [-1, 1] pixels the model sees."""
    return np.asarray(image, dtype=np.float32) / 127.5 - 1.0


def load_policy(argument: str) -> JaxOpenpiPolicy:
    if not argument:
        raise CheckpointError("jax_openpi needs a checkpoint: use jax_openpi:<run>/checkpoints/NNNNNN")
    return JaxOpenpiPolicy(argument)
