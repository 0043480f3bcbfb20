"""Registers ``jax_openpi`` with ``libs.policy_api.registry``: load a policy, find checkpoints, read cards.

Its checkpoint layout (orbax step folders with ``config.json``) is read without jax; jax and flax load with
the adapter, when the first policy is made.
"""

from backends.jax_openpi.checkpoints import find_checkpoints, read_card
from libs.policy_api.registry import import_on_first_load, register_backend

ADAPTER = "backends.jax_openpi.adapter"
register_backend(
    "jax_openpi", import_on_first_load(ADAPTER), find_checkpoints=find_checkpoints, read_card=read_card
)
