"""The object state seen from the cameras: a small keypoint network and the preprocessor step that runs it.

The simulator labels every recorded frame with ``observation.environment_state`` (block pose, bowl position)
for free. A network trained on those labels (``train_estimator.py``) reads the block and the bowl from the
camera images alone; as a preprocessor step it writes its estimate into ``observation.environment_state``
before normalisation, during training (over the dataset's true values, so the policy learns from the
estimate it will get) and at evaluation, where the scene gives no object state at all. The policy, whatever
it is (ACT, Diffusion, SmolVLA, Pi0), then reads the object state as the state-based policies do, from
images: what pretraining an image encoder on privileged labels buys, with the encoder frozen and its
features computed once per frame.

The network: per camera, four convolutions (stride 4 in all) and a spatial softmax (LeRobot Diffusion's
keypoint layer: the expected image position of each of K feature maps); the keypoints of every camera and
the joint state go through a two-layer MLP. The joint state places the wrist camera, which moves with the
arm: at the home pose the arm hides the block from the overhead camera and only the wrist camera sees it.
It predicts block x, y, z, the block's yaw as (cos 4ψ, sin 4ψ) — a cube looks the same turned by 90°, so
only ψ mod 90° can be seen — and bowl x, y, standardised. The step writes them back in
the dataset's layout (``libs.sim.layout.ENVIRONMENT_STATE_NAMES``) with the quaternion of ψ in (−45°, 45°].

The step carries its weights: LeRobot saves a stateful step's tensors as safetensors beside the
preprocessor's JSON, so a checkpoint is self-contained, and our adapter and ``lerobot-eval`` rebuild it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from lerobot.configs.types import FeatureType, PipelineFeatureType, PolicyFeature
from lerobot.processor.pipeline import ObservationProcessorStep
from lerobot.utils.constants import OBS_ENV_STATE, OBS_STATE
from torch import nn

#: Estimated values: block x, y, z, cos 4ψ, sin 4ψ, bowl x, bowl y.
TARGET_NAMES: tuple[str, ...] = ("block_x", "block_y", "block_z", "cos4yaw", "sin4yaw", "bowl_x", "bowl_y")
ENVIRONMENT_STATE_DIM = 9


def targets_from_environment_state(environment: torch.Tensor) -> torch.Tensor:
    """(…, 9) block xyz, quaternion wxyz, bowl xy → (…, 7) ``TARGET_NAMES``."""
    w, z = environment[..., 3], environment[..., 6]
    yaw = 2.0 * torch.atan2(z, w)
    return torch.stack(
        [
            environment[..., 0],
            environment[..., 1],
            environment[..., 2],
            torch.cos(4.0 * yaw),
            torch.sin(4.0 * yaw),
            environment[..., 7],
            environment[..., 8],
        ],
        dim=-1,
    )


def environment_state_from_targets(targets: torch.Tensor) -> torch.Tensor:
    """(…, 7) ``TARGET_NAMES`` → (…, 9) in the dataset's layout, the block upright at ψ in (−45°, 45°]."""
    yaw = torch.atan2(targets[..., 4], targets[..., 3]) / 4.0
    zero = torch.zeros_like(yaw)
    return torch.stack(
        [
            targets[..., 0],
            targets[..., 1],
            targets[..., 2],
            torch.cos(yaw / 2.0),
            zero,
            zero,
            torch.sin(yaw / 2.0),
            targets[..., 5],
            targets[..., 6],
        ],
        dim=-1,
    )


class SpatialSoftmax(nn.Module):
    """(B, K, H, W) feature maps → (B, K, 2): each map's softmax-weighted mean image position in [−1, 1]."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, keypoints, height, width = features.shape
        weights = torch.softmax(features.reshape(batch, keypoints, height * width), dim=-1)
        ys = torch.linspace(-1.0, 1.0, height, device=features.device, dtype=features.dtype)
        xs = torch.linspace(-1.0, 1.0, width, device=features.device, dtype=features.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        positions = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=-1)  # (H·W, 2)
        return weights @ positions


def _camera_stem(width: int, keypoints: int) -> nn.Sequential:
    def block(inputs: int, outputs: int, kernel: int, stride: int) -> list[nn.Module]:
        conv = nn.Conv2d(inputs, outputs, kernel, stride=stride, padding=kernel // 2)
        return [conv, nn.GroupNorm(min(8, outputs), outputs), nn.ReLU()]

    return nn.Sequential(
        *block(3, width, 5, 2),
        *block(width, 2 * width, 3, 2),
        *block(2 * width, 2 * width, 3, 1),
        nn.Conv2d(2 * width, keypoints, 1),
        SpatialSoftmax(),
        nn.Flatten(),
    )


@dataclass
class EstimatorConfig:
    """Everything that rebuilds the network (saved in the step's config and ``estimator.json``)."""

    camera_keys: list[str]
    width: int = 16
    keypoints: int = 16
    hidden: int = 256
    #: Standardisation of the targets (``TARGET_NAMES``), from the training frames.
    target_mean: list[float] = field(default_factory=lambda: [0.0] * len(TARGET_NAMES))
    target_std: list[float] = field(default_factory=lambda: [1.0] * len(TARGET_NAMES))
    #: Standardisation of the joint state the head reads (empty: the head reads the cameras only).
    state_mean: list[float] = field(default_factory=list)
    state_std: list[float] = field(default_factory=list)


class ObjectStateNet(nn.Module):
    """Camera images (each (B, 3, H, W) in [0, 1]) → standardised ``TARGET_NAMES`` (B, 7)."""

    def __init__(self, config: EstimatorConfig) -> None:
        super().__init__()
        self.config = config
        self.stems = nn.ModuleList(_camera_stem(config.width, config.keypoints) for _ in config.camera_keys)
        features = 2 * config.keypoints * len(config.camera_keys) + len(config.state_mean)
        self.head = nn.Sequential(
            nn.Linear(features, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, len(TARGET_NAMES)),
        )
        self.register_buffer("target_mean", torch.tensor(config.target_mean, dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(config.target_std, dtype=torch.float32))
        self.register_buffer("state_mean", torch.tensor(config.state_mean, dtype=torch.float32))
        self.register_buffer("state_std", torch.tensor(config.state_std, dtype=torch.float32))

    @property
    def reads_state(self) -> bool:
        return len(self.config.state_mean) > 0

    def forward(self, images: list[torch.Tensor], state: torch.Tensor | None = None) -> torch.Tensor:
        features = [stem(image) for stem, image in zip(self.stems, images, strict=True)]
        if self.reads_state:
            assert state is not None, "this estimator reads the joint state"
            features.append((state.float() - self.state_mean) / self.state_std)
        return self.head(torch.cat(features, dim=-1))

    def estimate(self, images: list[torch.Tensor], state: torch.Tensor | None = None) -> torch.Tensor:
        """The object state in the dataset's layout and units, (B, 9)."""
        targets = self(images, state) * self.target_std + self.target_mean
        return environment_state_from_targets(targets)


def _config_from_dict(values: dict[str, Any]) -> EstimatorConfig:
    known = EstimatorConfig.__dataclass_fields__
    return EstimatorConfig(**{key: value for key, value in values.items() if key in known})


@dataclass
class EstimateObjectStateStep(ObservationProcessorStep):
    """Writes ``observation.environment_state`` estimated from the cameras named in ``estimator``."""

    estimator: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._net = ObjectStateNet(_config_from_dict(self.estimator)) if self.estimator else None
        if self._net is not None:
            self._net.eval()

    @classmethod
    def from_net(cls, net: ObjectStateNet) -> EstimateObjectStateStep:
        step = cls(estimator=asdict(net.config))
        assert step._net is not None
        step._net.load_state_dict(net.state_dict())
        return step

    @property
    def camera_keys(self) -> list[str]:
        return list(self.estimator.get("camera_keys", []))

    @torch.no_grad()
    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        if self._net is None:
            return observation
        images = [observation[key] for key in self.camera_keys]
        leading = images[0].shape[:-3]  # (B,) or (B, n_obs_steps)
        flat = [image.reshape(-1, *image.shape[-3:]).float() for image in images]
        state = observation.get(OBS_STATE)
        if isinstance(state, torch.Tensor):
            state = state.reshape(-1, state.shape[-1])
        self._net.to(flat[0].device)
        estimate = self._net.estimate(flat, state).reshape(*leading, ENVIRONMENT_STATE_DIM)
        previous = observation.get(OBS_ENV_STATE)
        dtype = previous.dtype if isinstance(previous, torch.Tensor) else torch.float32
        observation[OBS_ENV_STATE] = estimate.to(dtype)
        return observation

    def get_config(self) -> dict[str, Any]:
        return {"estimator": dict(self.estimator)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self._net is None:
            return {}
        return {key: value.detach().cpu().contiguous() for key, value in self._net.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self._net is not None and state:
            self._net.load_state_dict(state)

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        observation = dict(features.get(PipelineFeatureType.OBSERVATION, {}))
        observation[OBS_ENV_STATE] = PolicyFeature(FeatureType.ENV, (ENVIRONMENT_STATE_DIM,))
        return {**features, PipelineFeatureType.OBSERVATION: observation}


def find_estimator_step(preprocessor: Any) -> EstimateObjectStateStep | None:
    """The estimator step of a loaded preprocessor, if it has one."""
    for step in getattr(preprocessor, "steps", []):
        if isinstance(step, EstimateObjectStateStep):
            return step
    return None


def insert_before_normalizer(preprocessor: Any, step: EstimateObjectStateStep) -> None:
    """Place ``step`` right before the preprocessor's normaliser (so its estimate is normalised with the
    dataset's object-state stats, as the true values were), or last when there is none."""
    from lerobot.processor.normalize_processor import NormalizerProcessorStep

    steps = list(preprocessor.steps)
    index = next((i for i, s in enumerate(steps) if isinstance(s, NormalizerProcessorStep)), len(steps))
    preprocessor.steps = [*steps[:index], step, *steps[index:]]


def yaw_error_degrees(estimated: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """|ψ̂ − ψ| modulo the cube's 90° symmetry, in degrees, from (…, 9) object states."""
    estimated_yaw = 2.0 * torch.atan2(estimated[..., 6], estimated[..., 3])
    true_yaw = 2.0 * torch.atan2(true[..., 6], true[..., 3])
    difference = torch.remainder(estimated_yaw - true_yaw + math.pi / 4, math.pi / 2) - math.pi / 4
    return torch.rad2deg(difference.abs())
