"""Backends by name: ``torch_lerobot:/runs/act/checkpoints/010000`` → a policy, or its checkpoint's card.

The harness names no stack. Each backend module registers, when imported, what only it knows:
``load_policy`` (the text after ``name:`` → a ``Policy``) and ``read_card`` (the same text → the checkpoint's
``CheckpointCard``, read from the backend's own folder layout without loading the model). The table below
only says *where* a backend lives, so that it can be imported on demand; when its stack is not installed in
the current resolve the user is told which Pants target to run instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from libs.policy_api.types import Policy

if TYPE_CHECKING:  # card.py imports this module (its error is a PolicyLoadError)
    from libs.policy_api.card import CheckpointCard

PolicyFactory = Callable[[str], Policy]
CardReader = Callable[[str], "CheckpointCard | None"]


class PolicyLoadError(RuntimeError):
    """A policy string could not be turned into a policy; the message names the fix."""


@dataclass(frozen=True)
class Backend:
    """What one backend registered: how to load its policies and read its checkpoints' cards."""

    name: str
    load_policy: PolicyFactory
    #: None for a backend whose argument names no checkpoint (``scripted``, ``remote``).
    read_card: CardReader | None = None


_BACKENDS: dict[str, Backend] = {}

#: backend name -> (module that registers it on import, Pants target that runs the sweep in its resolve)
KNOWN_BACKENDS: dict[str, tuple[str, str]] = {
    "scripted": ("libs.sim.scripted_policy", "services/eval:sweep"),
    "remote": ("libs.policy_api.remote", "services/eval:sweep"),
    "torch_lerobot": ("backends.torch_lerobot.adapter", "services/eval:sweep-torch_lerobot"),
    "jax_openpi": ("backends.jax_openpi.adapter", "services/eval:sweep-jax_openpi"),
}


def register_backend(name: str, load_policy: PolicyFactory, *, read_card: CardReader | None = None) -> None:
    """Called by a backend module at import time. Both callables receive the text after ``name:``."""
    _BACKENDS[name] = Backend(name, load_policy, read_card)


def registered_backends() -> set[str]:
    """Backends registered in this process so far (the built-in ones register when first imported)."""
    return set(_BACKENDS)


def split_policy_uri(uri: str) -> tuple[str, str]:
    name, _, argument = uri.partition(":")
    return name.strip(), argument.strip()


def backend(name: str, uri: str) -> Backend:
    """The backend ``name`` (of the policy string ``uri``), importing its module on first use."""
    if name not in _BACKENDS:
        if name not in KNOWN_BACKENDS:
            known = ", ".join(sorted(KNOWN_BACKENDS))
            raise PolicyLoadError(f"unknown policy backend {name!r} in {uri!r}: use one of {known}")
        module, target = KNOWN_BACKENDS[name]
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise PolicyLoadError(
                f"backend {name!r} is not installed in this resolve ({error.name or error}): "
                f"run `./pants run {target} -- ...` instead"
            ) from error
        if name not in _BACKENDS:
            raise PolicyLoadError(f"module {module} did not register backend {name!r}")
    return _BACKENDS[name]


def make_policy(uri: str) -> Policy:
    """``scripted``, ``torch_lerobot:<dir>``, ``jax_openpi:<dir>`` or ``remote:ws://host:port``."""
    name, argument = split_policy_uri(uri)
    return backend(name, uri).load_policy(argument)


def read_card(uri: str) -> CheckpointCard | None:
    """The card of the checkpoint ``uri`` names, without loading its model; None for a policy string that
    names no checkpoint (``scripted``; ``remote:``, whose card comes with the server's first frame)."""
    name, argument = split_policy_uri(uri)
    reader = backend(name, uri).read_card
    return reader(argument) if reader is not None else None
