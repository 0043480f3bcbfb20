"""LeRobot env plugin: the SO-101 block→bowl task for LeRobot's own tools (``lerobot-eval``, ``make_env``).

How LeRobot 0.6.1 finds it: an env is chosen by ``--env.type=<name>``, a draccus choice among the
``EnvConfig`` subclasses registered with ``@EnvConfig.register_subclass(name)``. Third-party packages are
imported either because they are installed under a ``lerobot_env_*`` distribution name
(``register_third_party_plugins``) or because the command line names them
(``--env.discover_packages_path=lerobot_env_so101``). ``EnvConfig.create_envs`` then calls
``gym.make(gym_id)`` with ``gym_id = f"{package_name}/{task}"``, importing ``package_name`` first if the id
is not registered; importing this package registers the id.

LeRobot's rollout converts observations with ``preprocess_observation``, which understands ``agent_pos``
(-> ``observation.state``) and ``pixels`` (a dict of uint8 RGB images -> ``observation.images.<camera>``),
and reads the language prompt from the env's ``task_description``. ``LeRobotObservations`` gives our
env's observations that shape. Depth images have no place in that conversion, so depth cameras expose
their RGB image only here.

    ./pants run backends/torch_lerobot:lerobot-eval -- --env.type=so101_pick_place \\
        --policy.path=runs/act/checkpoints/002000/pretrained_model --eval.n_episodes=10 --eval.batch_size=1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig

# A checkpoint trained on one of this backend's GroupNorm ResNets names it as its vision_backbone: importing
# the module registers them with torchvision before lerobot-eval builds the policy.
from backends.torch_lerobot import scratch_backbones  # noqa: F401
from libs.policy_api.types import ACTION_KEY, IMAGE_KEY_PREFIX, STATE_KEY, TASK_KEY

PACKAGE_NAME = "lerobot_env_so101"
ENV_TYPE = "so101_pick_place"
GYM_TASK = "PickPlace-v0"
GYM_ID = f"{PACKAGE_NAME}/{GYM_TASK}"
ACTION_DIMS = {"joint": 6, "ee": 7}


class LeRobotObservations(gym.ObservationWrapper):
    """Our env's flat observation keys -> the ``agent_pos`` / ``pixels`` layout LeRobot's rollout reads."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        scene = env.unwrapped.scene
        self.camera_names = tuple(camera.name for camera in scene.cameras)
        pixels = {
            camera.name: gym.spaces.Box(0, 255, (camera.height, camera.width, 3), dtype=np.uint8)
            for camera in scene.cameras
        }
        spaces: dict[str, gym.Space] = {"agent_pos": env.observation_space[STATE_KEY]}
        if pixels:
            spaces["pixels"] = gym.spaces.Dict(pixels)
        self.observation_space = gym.spaces.Dict(spaces)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        converted: dict[str, Any] = {"agent_pos": np.asarray(observation[STATE_KEY], dtype=np.float32)}
        if self.camera_names:
            converted["pixels"] = {
                name: observation[f"{IMAGE_KEY_PREFIX}{name}"] for name in self.camera_names
            }
        return converted

    @property
    def task_description(self) -> str:
        return str(self.env.unwrapped.task)

    @property
    def task(self) -> str:
        return self.task_description


def make_lerobot_env(
    scene_path: str | None = None,
    action_space: str = "joint",
    prompt: str | None = None,
    render_mode: str | None = "rgb_array",
    **env_kwargs: Any,
) -> gym.Env:
    """The gym entry point: our env, optionally in a saved scene (a scene.json or a checkpoint's card)."""
    from libs.sim.env import SO101PickPlaceEnv

    scene = load_scene(scene_path) if scene_path else None
    if prompt is not None:
        env_kwargs[TASK_KEY] = prompt
    env = SO101PickPlaceEnv(scene=scene, action_space=action_space, render_mode=render_mode, **env_kwargs)
    return LeRobotObservations(env)


def load_scene(path: str | None) -> Any:
    """The ``SceneConfig`` of a scene.json, or of a checkpoint's ``card.json`` (or its folder): the scene
    the checkpoint was trained in. None of those: the bench scene."""
    from pathlib import Path

    from libs.policy_api.card import CARD_FILE, CheckpointCard
    from libs.sim.scene_config import SceneConfig

    if not path:
        return SceneConfig()
    given = Path(path)
    folder = given if given.is_dir() else (given.parent if given.name == CARD_FILE else None)
    if folder is None:
        return SceneConfig.load(path)
    card = CheckpointCard.read(folder)
    if card is None or card.scene is None:
        raise ValueError(f"{path} carries no training scene: pass a scene.json with --env.scene_path")
    return SceneConfig.from_dict(card.scene)


if GYM_ID not in gym.registry:
    gym.register(id=GYM_ID, entry_point=f"{PACKAGE_NAME}:make_lerobot_env")


@EnvConfig.register_subclass(ENV_TYPE)
@dataclass
class SO101PickPlaceEnvConfig(EnvConfig):
    """``--env.type=so101_pick_place``; ``--env.scene_path`` picks a scene.json or a checkpoint's card.json
    (default: the bench's scene)."""

    task: str | None = GYM_TASK
    fps: int = 30
    episode_length: int = 300
    action_space: str = "joint"
    scene_path: str | None = None
    prompt: str | None = None
    features: dict[str, PolicyFeature] = field(default_factory=dict)
    features_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action_space not in ACTION_DIMS:
            raise ValueError(f"env.action_space must be 'joint' or 'ee', got {self.action_space!r}")
        scene = load_scene(self.scene_path)
        self.features = {
            ACTION_KEY: PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIMS[self.action_space],)),
            "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(6,)),
        }
        self.features_map = {ACTION_KEY: ACTION_KEY, "agent_pos": STATE_KEY}
        for camera in scene.cameras:
            key = f"pixels/{camera.name}"
            shape = (camera.height, camera.width, 3)
            self.features[key] = PolicyFeature(type=FeatureType.VISUAL, shape=shape)
            self.features_map[key] = f"{IMAGE_KEY_PREFIX}{camera.name}"

    @property
    def package_name(self) -> str:
        return PACKAGE_NAME

    @property
    def gym_kwargs(self) -> dict[str, Any]:
        return {
            "max_episode_steps": self.episode_length,
            "max_steps": self.episode_length,
            "scene_path": self.scene_path,
            "action_space": self.action_space,
            "prompt": self.prompt,
        }
