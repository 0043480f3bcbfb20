"""Registers ``torch_lerobot`` with ``libs.policy_api.registry``: load a policy, find checkpoints, read cards.

Finding checkpoints and reading cards only walk folders and read JSON, so a sweep's driver plans a whole
run without importing torch; the adapter (and torch with it) is imported when a policy is first loaded.
"""

from backends.torch_lerobot.checkpoints import find_checkpoints, read_card
from libs.policy_api.registry import import_on_first_load, register_backend

ADAPTER = "backends.torch_lerobot.adapter"
register_backend(
    "torch_lerobot", import_on_first_load(ADAPTER), find_checkpoints=find_checkpoints, read_card=read_card
)
