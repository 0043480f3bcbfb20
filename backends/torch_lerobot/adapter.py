"""A LeRobot checkpoint as the lab's ``Policy``: ``make_policy("torch_lerobot:<dir>")``.

``<dir>`` is a ``pretrained_model`` dir, a ``checkpoints/NNNNNN`` dir, or a run dir (its last checkpoint).
The checkpoint's own processors (saved by lerobot-train) normalise the inputs and de-normalise the actions;
a checkpoint without them is refused, because its actions would silently stay normalised. Observation
keys are matched to the policy's input features by name, read from the checkpoint's config.

``infer`` returns the policy's whole predicted chunk (``predict_action_chunk``), so the harness executes
``spec.n_action_steps`` of it and whiskers can draw all of it. Policies that look at several past
observations (Diffusion with ``n_obs_steps > 1``) need every control step's observation; for those the
spec asks for one step per call and the adapter keeps LeRobot's action queue itself, returning what is
left of the current chunk. It reads an observation only when it will still be in the history at the next
prediction, so the env's on-demand images (``libs.policy_api.lazy_observation``) of the other steps are never
drawn. ACT with ``temporal_ensemble_coeff`` also plans every step: each call predicts a chunk and returns the
temporal ensemble (LeRobot's ``ACTTemporalEnsembler``, over normalised actions as LeRobot's
``select_action`` does): row 0 is the action to execute, the rest the ensemble's plan for the next steps.

Sampling policies whose only randomness is their starting noise (Diffusion sampled by DDIM, SmolVLA and Pi0
by flow matching) draw it per episode, from a generator seeded with the episode's seed, with the very call
LeRobot would make on torch's global generator (seeded with the same seed by ``reset``): one episode alone
gets LeRobot's numbers, and an episode in a lockstep batch gets the noise it gets alone, whatever else is
in the batch. Diffusion by DDPM draws noise at every denoising step too; it keeps the global generator (one
batch shares its draws).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.modeling_act import ACTTemporalEnsembler
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from safetensors import SafetensorError

# scratch_backbones registers the GroupNorm ResNets a checkpoint may name as its vision_backbone.
from backends.torch_lerobot import (  # noqa: F401
    depth_channels,
    environment_state,
    scratch_backbones,
    tiny_backbones,
)
from backends.torch_lerobot.checkpoints import (
    PREPROCESSOR_FILE,
    TRAIN_CONFIG_FILE,
    CheckpointError,
    check_action_unnormalizer,
    check_cameras_were_trained,
    check_processor_files,
    missing_camera_stats_line,
    read_card,
    read_json_beside,
    resolve_pretrained_dir,
)
from backends.torch_lerobot.loaded_weights import check_weights_loaded
from backends.torch_lerobot.object_state_estimator import EstimateObjectStateStep, find_estimator_step
from libs.errors import LabError
from libs.policy_api.card import CARD_FILE, LEGACY_FILES, CheckpointCard
from libs.policy_api.types import (
    ENVIRONMENT_STATE_KEY,
    IMAGE_KEY_PREFIX,
    STATE_KEY,
    TASK_KEY,
    CameraInput,
    EpisodeState,
    Observation,
    PolicySpec,
)

LOG = logging.getLogger(__name__)
ACTION_FEATURE = "action"
#: Kept beside the weights by this lab (a pre-card checkpoint's files too), copied along by ``save``.
SIDECAR_FILES = (CARD_FILE, *LEGACY_FILES.values(), tiny_backbones.TINY_BACKBONE_FILE, TRAIN_CONFIG_FILE)
#: Cameras SmolVLA / Pi0 synthesise themselves (blank images padding the camera count); never env inputs.
_SYNTHETIC_CAMERA_PREFIX = f"{IMAGE_KEY_PREFIX}empty_camera_"


class ObservationMismatchError(LabError, ValueError):
    """The observation does not carry what the checkpoint was trained on; the message names the keys."""


def _root_reason(error: BaseException) -> str:
    """The innermost exception of a chain, as ``Type: first line``."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _cameras_by_key(scene_config: Mapping[str, Any] | None) -> dict[str, CameraInput]:
    """Observation key -> camera input as the scene config declares it (modality is declared, never
    guessed from a key's spelling)."""
    cameras: dict[str, CameraInput] = {}
    for camera in (scene_config or {}).get("cameras", []) or []:
        if not isinstance(camera, Mapping) or "name" not in camera:
            continue
        name, height, width = str(camera["name"]), int(camera.get("height", 0)), int(camera.get("width", 0))
        rgb = CameraInput(name, height, width, "rgb")
        cameras[rgb.key] = rgb
        if camera.get("depth"):
            depth = CameraInput(name, height, width, "depth")
            cameras[depth.key] = depth
    return cameras


def _observed_features(
    policy_features: dict[str, PolicyFeature],
    estimator: EstimateObjectStateStep | None,
    declared: Mapping[str, CameraInput],
) -> dict[str, PolicyFeature]:
    """What the env must give: the policy's inputs, except an object state its estimator writes from the
    cameras, which it reads in its place (at the size the scene declares)."""
    if estimator is None:
        return policy_features
    features = {key: value for key, value in policy_features.items() if key != ENVIRONMENT_STATE_KEY}
    for key in estimator.camera_keys:
        if key not in features and key in declared:
            camera = declared[key]
            features[key] = PolicyFeature(FeatureType.VISUAL, (3, camera.height, camera.width))
    return features


def _normalization(config: PreTrainedConfig, feature_type: str) -> str:
    """How the config normalises a feature type (``MEAN_STD``, ``IDENTITY``, ...)."""
    mode = (getattr(config, "normalization_mapping", None) or {}).get(feature_type, "IDENTITY")
    return str(getattr(mode, "value", mode))


def _check_local_backbone(config: PreTrainedConfig, pretrained_dir: Path) -> None:
    """SmolVLA rebuilds its VLM from ``vlm_model_name`` and Pi0's processor its tokenizer from a saved
    path; a local backbone dir that has moved would otherwise surface as a long hub error."""
    paths = []
    if getattr(config, "vlm_model_name", None):
        paths.append(str(config.vlm_model_name))
    preprocessor = read_json_beside(pretrained_dir, PREPROCESSOR_FILE) or {}
    for step in preprocessor.get("steps", []):
        tokenizer = (step.get("config") or {}).get("tokenizer_name")
        if tokenizer:
            paths.append(str(tokenizer))
    for path in paths:
        if path.startswith(("/", "./", "../", "~")) and not Path(path).expanduser().exists():
            raise CheckpointError(
                f"{pretrained_dir} was trained on the local backbone {path}, which no longer exists: restore "
                "that directory (train --backbone-dir / --tiny-backbone) or retrain"
            )


@dataclasses.dataclass
class LeRobotEpisode(EpisodeState):
    """One episode's observation history and what is left of its chunk (policies with ``n_obs_steps > 1``)."""

    #: Preprocessed observations; None for one never read (it leaves the history before the next prediction).
    history: collections.deque[dict[str, torch.Tensor] | None] = dataclasses.field(
        default_factory=collections.deque
    )
    queued_actions: np.ndarray | None = None
    #: ACT with temporal ensembling: this episode's running ensemble of predicted chunks.
    ensembler: ACTTemporalEnsembler | None = None
    #: Sampling policies (module docstring): this episode's noise stream, seeded with its seed.
    generator: torch.Generator | None = None


class LeRobotPolicy:
    """Policy + HasCard + ReportsNormalizedInputs + BatchPolicy over a LeRobot checkpoint."""

    def __init__(self, checkpoint: str | Path, device: str | None = None) -> None:
        self.pretrained_dir = resolve_pretrained_dir(checkpoint)
        check_processor_files(self.pretrained_dir)
        self.device = device or _default_device()

        try:
            config = PreTrainedConfig.from_pretrained(self.pretrained_dir)
        except Exception as error:  # draccus wraps the reason in tens of lines; the root names it
            raise CheckpointError(
                f"{self.pretrained_dir / 'config.json'} is not a valid policy config "
                f"({_root_reason(error)}): fix that field, or use the config.json the training run wrote"
            ) from None
        if hasattr(config, "pretrained_backbone_weights"):
            # The trained weights replace the ResNet's anyway; asking torchvision for ImageNet weights would
            # only try to download them.
            config.pretrained_backbone_weights = None
        config.device = self.device
        self.config = config
        _check_local_backbone(config, self.pretrained_dir)
        check_action_unnormalizer(self.pretrained_dir, _normalization(config, "ACTION"))
        try:
            with tiny_backbones.loading_context(config, self.pretrained_dir):
                policy_class = get_policy_class(config.type)
                self.policy = policy_class.from_pretrained(self.pretrained_dir, config=config)
            self.preprocessor, self.postprocessor = make_pre_post_processors(
                config,
                pretrained_path=str(self.pretrained_dir),
                preprocessor_overrides={"device_processor": {"device": self.device}},
            )
        except SafetensorError as error:
            raise CheckpointError(
                f"{self.pretrained_dir / 'model.safetensors'} cannot be read ({_root_reason(error)}): the "
                "weights file is truncated or corrupt; copy it again from the training run"
            ) from None
        except (OSError, RuntimeError, KeyError, ValueError) as error:
            raise CheckpointError(f"cannot load {self.pretrained_dir}: {_root_reason(error)}") from None
        # LeRobot loads non-strictly (Pi0 even without a weights file): refuse random initial weights.
        check_weights_loaded(self.policy, self.pretrained_dir)
        self.policy.eval()
        # Depth checkpoints name depth_channels' step in their preprocessor, SmolVLA/Pi0 ones trained with
        # the object state environment_state's (both imported above, so they load).
        assert depth_channels.RepeatDepthChannelsStep and environment_state.AppendEnvironmentStateStep

        card = read_card(self.pretrained_dir)
        #: What the checkpoint carries from its dataset (``HasCard``), with the policy type for reports.
        self.card: CheckpointCard = card.with_fields(extra={**card.extra, "policy_type": config.type})
        self._input_features = {
            key: feature
            for key, feature in config.input_features.items()
            if not key.startswith(_SYNTHETIC_CAMERA_PREFIX)
        }
        #: What the env must give (the policy's inputs, or an estimator's cameras for its object state).
        self._observed_features = _observed_features(
            self._input_features, find_estimator_step(self.preprocessor), _cameras_by_key(self.card.scene)
        )
        self._check_cameras_against_card()
        self._temporal_ensemble_coeff: float | None = getattr(config, "temporal_ensemble_coeff", None)
        self._draw_noise = _episode_noise(config)
        self._spec = self._make_spec()
        self._episode = self.new_episode(0)

    # --- what the checkpoint says about itself -------------------------------------------------------------

    def _check_cameras_against_card(self) -> None:
        """The cameras the config reads were in the training data (else refused), with statistics (else one
        warning line)."""
        cameras = [key for key, feature in self._input_features.items() if feature.type is FeatureType.VISUAL]
        trained = [feature.name for feature in self.card.observation_features]
        check_cameras_were_trained(self.pretrained_dir, cameras, trained)
        line = missing_camera_stats_line(
            self.pretrained_dir, self.card.stats, cameras, _normalization(self.config, "VISUAL")
        )
        if line is not None:
            LOG.warning(line)

    def _make_spec(self) -> PolicySpec:
        declared = _cameras_by_key(self.card.scene)
        cameras = []
        for key, feature in self._observed_features.items():
            if feature.type is not FeatureType.VISUAL:
                continue
            _, height, width = (int(size) for size in feature.shape)
            if key in declared:
                camera = declared[key]
                cameras.append(CameraInput(camera.name, height, width, camera.modality))
            else:  # no scene.json: an RGB camera named after the key
                cameras.append(CameraInput(key.removeprefix(IMAGE_KEY_PREFIX), height, width, "rgb"))
        state = self._observed_features.get(STATE_KEY)
        environment = self._observed_features.get(ENVIRONMENT_STATE_KEY)
        action_dim = int(self.config.output_features[ACTION_FEATURE].shape[0])
        chunk_length = int(getattr(self.config, "chunk_size", 0) or self.config.n_action_steps)
        n_action_steps = int(self.config.n_action_steps)
        if self.config.type == "diffusion":
            # Its predict_action_chunk keeps only the executable part of the horizon.
            chunk_length = n_action_steps
        if self.config.n_obs_steps > 1:
            n_action_steps = 1  # see the module docstring: every step's observation is needed
        if self._temporal_ensemble_coeff is not None:
            n_action_steps = 1  # a new chunk every step, ensembled with the earlier ones
        return PolicySpec(
            cameras=tuple(cameras),
            state_dim=int(state.shape[0]) if state is not None else 0,
            environment_state_dim=int(environment.shape[0]) if environment is not None else 0,
            action_dim=action_dim,
            action_space="ee" if action_dim == 7 else "joint",
            chunk_length=chunk_length,
            n_action_steps=n_action_steps,
        )

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def last_normalized_inputs(self) -> Mapping[str, np.ndarray]:
        return self._episode.normalized_inputs

    def save(self, directory: str | Path) -> Path:
        """Write this policy as a self-contained ``pretrained_model`` dir: config and weights, both
        processors (with their normalisation stats) and the files kept beside them."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.policy.save_pretrained(directory)
        self.preprocessor.save_pretrained(directory)
        self.postprocessor.save_pretrained(directory)
        for name in SIDECAR_FILES:
            if (self.pretrained_dir / name).is_file():
                shutil.copy2(self.pretrained_dir / name, directory / name)
        return directory

    # --- acting ------------------------------------------------------------------------------------------

    def reset(self) -> None:
        # Diffusion/flow sampling draws from torch's global RNG: seed it from the episode (the harness seeds
        # numpy's global RNG with the episode seed before reset), so an episode's actions do not depend on
        # which episodes this worker ran before.
        seed = int(np.random.randint(0, 2**31 - 1))
        torch.manual_seed(seed)
        self.policy.reset()
        self._episode = self.new_episode(seed)

    def new_episode(self, seed: int) -> LeRobotEpisode:
        ensembler = None
        if self._temporal_ensemble_coeff is not None:
            ensembler = ACTTemporalEnsembler(self._temporal_ensemble_coeff, int(self.config.chunk_size))
        generator = None
        if self._draw_noise is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        return LeRobotEpisode(
            seed=seed,
            history=collections.deque(maxlen=self.config.n_obs_steps),
            ensembler=ensembler,
            generator=generator,
        )

    def _to_policy_inputs(self, observation: Observation) -> dict[str, Any]:
        missing = [key for key in self._observed_features if key not in observation]
        if missing:
            offered = sorted(key for key in observation if key.startswith("observation."))
            raise ObservationMismatchError(
                f"observation lacks {', '.join(missing)} needed by {self.pretrained_dir} "
                f"(policy inputs: {', '.join(self._observed_features)}; "
                f"observation has: {', '.join(offered)}): "
                "evaluate with the cameras the policy was trained with"
            )
        inputs: dict[str, Any] = {}
        for key, feature in self._observed_features.items():
            value = np.asarray(observation[key])
            if feature.type is FeatureType.VISUAL:
                inputs[key] = self._image_tensor(key, value, tuple(feature.shape))
            else:
                inputs[key] = torch.as_tensor(value, dtype=torch.float32).reshape(1, -1)
        inputs[TASK_KEY] = str(observation.get(TASK_KEY, "") or "")
        return inputs

    def _image_tensor(self, key: str, image: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
        channels, height, width = shape
        if image.ndim == 2:  # depth, H x W metres (training read the dataset's depth in metres too)
            image = image[..., None]
        if image.shape[:2] != (height, width):
            raise ObservationMismatchError(
                f"{key} is {image.shape[0]}x{image.shape[1]} but {self.pretrained_dir} was trained on "
                f"{height}x{width}: evaluate with the training scene's camera resolution"
            )
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
        tensor = tensor.to(torch.float32) / 255.0 if image.dtype == np.uint8 else tensor.to(torch.float32)
        if tensor.shape[1] != channels:
            tensor = tensor.expand(-1, channels, -1, -1)
        return tensor

    def _with_history(self, batch: dict[str, Any], history: collections.deque) -> dict[str, Any]:
        """Stack the last ``n_obs_steps`` preprocessed observations, as LeRobot's queues do."""
        tensors = {key: batch[key] for key in self._input_features}
        if not history:
            for _ in range(self.config.n_obs_steps - 1):
                history.append(tensors)
        history.append(tensors)
        assert all(past is not None for past in history), "an unread observation reached a prediction"
        stacked = dict(batch)
        for key in tensors:
            stacked[key] = torch.stack([past[key] for past in history], dim=1)  # type: ignore[index]
        return stacked

    def infer(self, observation: Observation) -> np.ndarray:
        return self.infer_batch([observation], [self._episode])[0]

    @torch.no_grad()
    def infer_batch(
        self, observations: Sequence[Observation], episodes: Sequence[EpisodeState]
    ) -> list[np.ndarray]:
        """One ``predict_action_chunk`` for every observation that needs a new chunk. Sampling policies
        (Diffusion, SmolVLA, Pi0) draw the batch's noise from torch's global generator, seeded by
        ``reset``."""
        chunks: list[np.ndarray | None] = [None] * len(observations)
        to_predict: list[tuple[int, dict[str, Any]]] = []
        for index, (observation, episode) in enumerate(zip(observations, episodes, strict=True)):
            assert isinstance(episode, LeRobotEpisode), "episodes come from this policy's new_episode"
            queued = episode.queued_actions
            if queued is not None and len(queued) >= self.config.n_obs_steps > 1:
                # The next prediction comes when the queue is empty, len(queued) calls from now; the history
                # then holds the last n_obs_steps observations, which excludes this one: leave it unread.
                episode.history.append(None)
                chunks[index], episode.queued_actions = queued, queued[1:]
                continue
            batch = self.preprocessor(self._to_policy_inputs(observation))
            episode.normalized_inputs = {
                key: batch[key].detach().to("cpu", torch.float32).numpy()
                for key in self._input_features
                if isinstance(batch.get(key), torch.Tensor)
            }
            if self.config.n_obs_steps > 1:
                if queued is not None and len(queued) > 0:  # kept for the next prediction
                    episode.history.append({key: batch[key] for key in self._input_features})
                    chunks[index], episode.queued_actions = queued, queued[1:]
                    continue
                batch = self._with_history(batch, episode.history)
            to_predict.append((index, batch))
        if to_predict:
            predicted = self._predict(
                [batch for _, batch in to_predict],
                [episodes[index] for index, _ in to_predict],  # type: ignore[misc]
            )
            for (index, _), chunk in zip(to_predict, predicted, strict=True):
                if self.config.n_obs_steps > 1:
                    episodes[index].queued_actions = chunk[1:]  # type: ignore[attr-defined]
                chunks[index] = np.ascontiguousarray(chunk, dtype=np.float32)
        return [chunk for chunk in chunks if chunk is not None]

    def _predict(self, batches: Sequence[dict[str, Any]], episodes: Sequence[LeRobotEpisode]) -> np.ndarray:
        combined = batches[0] if len(batches) == 1 else _concatenate(batches)
        if combined is None:  # inputs that cannot share a tensor: one pass each
            return np.concatenate(
                [self._predict([batch], [episode]) for batch, episode in zip(batches, episodes, strict=True)]
            )
        if self._draw_noise is not None:
            noise = torch.cat([self._draw_noise(episode.generator, self.device) for episode in episodes])
            normalized = self.policy.predict_action_chunk(combined, noise=noise)
        else:
            normalized = self.policy.predict_action_chunk(combined)
        if self._temporal_ensemble_coeff is not None:
            normalized = torch.cat(
                [_ensembled(episode, normalized[row : row + 1]) for row, episode in enumerate(episodes)]
            )
        actions = self.postprocessor(normalized)
        return actions.detach().to("cpu", torch.float32).numpy()


NoiseDraw = Callable[[torch.Generator | None, str], torch.Tensor]


def _episode_noise(config: PreTrainedConfig) -> NoiseDraw | None:
    """One episode's starting noise, (1, horizon, dim), drawn as LeRobot draws a batch's from the global
    generator; None for a deterministic policy or one that draws more noise while it samples (DDPM)."""
    if config.type == "diffusion" and config.noise_scheduler_type == "DDIM":  # DDIM's eta is 0: no more noise
        shape = (1, int(config.horizon), int(config.action_feature.shape[0]))
        return lambda generator, device: torch.randn(
            size=shape, dtype=torch.float32, device=device, generator=generator
        )
    if config.type in ("smolvla", "pi0"):  # lerobot.policies.common.flow_matching.sample_noise
        shape = (1, int(config.chunk_size), int(config.max_action_dim))
        return lambda generator, device: torch.normal(
            mean=0.0, std=1.0, size=shape, dtype=torch.float32, device=device, generator=generator
        )
    return None


def _ensembled(episode: LeRobotEpisode, chunk: torch.Tensor) -> torch.Tensor:
    """(1, chunk, dim) prediction → (1, chunk, dim): the ensemble's next action, then its plan after it."""
    assert episode.ensembler is not None
    action = episode.ensembler.update(chunk)
    plan = episode.ensembler.ensembled_actions
    return torch.cat([action[:, None], plan], dim=1)


def _concatenate(batches: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Preprocessed single-observation batches as one batch (tensors along dim 0, texts as a list)."""
    combined: dict[str, Any] = {}
    for key, first in batches[0].items():
        values = [batch.get(key) for batch in batches]
        if isinstance(first, torch.Tensor):
            if any(not isinstance(v, torch.Tensor) or v.shape[1:] != first.shape[1:] for v in values):
                return None
            combined[key] = torch.cat(values, dim=0)
        elif isinstance(first, str):
            combined[key] = list(values)
        elif isinstance(first, list):
            combined[key] = [item for value in values for item in (value or [])]
        else:
            combined[key] = first
    return combined


def load_policy(checkpoint: str | Path, device: str | None = None) -> LeRobotPolicy:
    return LeRobotPolicy(checkpoint, device=device)
