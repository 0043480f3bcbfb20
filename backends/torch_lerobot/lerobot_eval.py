"""``lerobot-eval`` with this lab's env plugin loaded: LeRobot's own evaluation on the SO-101 task.

    ./pants run backends/torch_lerobot:lerobot-eval -- --env.type=so101_pick_place \\
        --env.scene_path=RUN/checkpoints/002000/pretrained_model/card.json \\
        --policy.path=RUN/checkpoints/002000/pretrained_model --eval.n_episodes=10 --eval.batch_size=1

Outside Pants, plain ``lerobot-eval`` works too with ``--env.discover_packages_path=lerobot_env_so101``
when ``backends/torch_lerobot/plugins`` and the repo root are on ``PYTHONPATH``. A checkpoint trained on a
tiny Pi0 backbone is rebuilt at its tiny size here (LeRobot alone would build the full-size model).
"""

from __future__ import annotations

import sys
from pathlib import Path

from lerobot.configs.policies import PreTrainedConfig
from lerobot.scripts import lerobot_eval

import lerobot_env_so101
from backends.torch_lerobot import depth_channels, environment_state
from backends.torch_lerobot.tiny_backbones import loading_context


def _policy_path(argv: list[str]) -> Path | None:
    for index, argument in enumerate(argv):
        if argument.startswith("--policy.path="):
            return Path(argument.split("=", 1)[1])
        if argument == "--policy.path" and index + 1 < len(argv):
            return Path(argv[index + 1])
    return None


def main() -> None:
    assert lerobot_env_so101.ENV_TYPE  # importing the plugin registered --env.type=so101_pick_place
    assert depth_channels.RepeatDepthChannelsStep  # a depth checkpoint's preprocessor names this step
    assert environment_state.AppendEnvironmentStateStep  # and a SmolVLA/Pi0 one with object state, this
    policy_path = _policy_path(sys.argv[1:])
    if policy_path is None or not (policy_path / "config.json").is_file():
        lerobot_eval.main()
        return
    config = PreTrainedConfig.from_pretrained(policy_path)
    with loading_context(config, policy_path):
        lerobot_eval.main()


if __name__ == "__main__":
    main()
