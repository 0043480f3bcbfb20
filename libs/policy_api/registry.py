"""Backends by name: ``torch_lerobot:/runs/act`` → its checkpoints, each one's card, a policy.

The harness names no stack. Each backend registers, when its module is imported, what only it knows:
``load_policy`` (the text after ``name:`` → a ``Policy``), ``find_checkpoints`` (a run or checkpoint path →
its checkpoints in step order, in that backend's own folder layout) and ``read_card`` (the text after
``name:`` → the checkpoint's ``CheckpointCard``, without loading the model). A model backend registers from
a small ``backends/<name>/backend.py`` that imports its stack only when a policy is loaded. The table below
only says *where* a backend registers, so that it can be imported on demand; when its stack is not in the
current resolve the user is told which Pants target to run instead. Which backends a binary holds comes
from one aggregate Pants target per resolve (``backends:sim``, ``backends:torch_lerobot``,
``backends:jax_openpi``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from libs.policy_api.load_errors import PolicyLoadError as PolicyLoadError  # re-exported
from libs.policy_api.types import Policy

if TYPE_CHECKING:
    from libs.policy_api.card import CheckpointCard
    from libs.policy_api.checkpoint_folders import FoundCheckpoint

PolicyFactory = Callable[[str], Policy]
CardReader = Callable[[str], "CheckpointCard | None"]
CheckpointFinder = Callable[[Path], "list[FoundCheckpoint]"]


@dataclass(frozen=True)
class Backend:
    """What one backend registered: how to load its policies and read its checkpoints' cards."""

    name: str
    load_policy: PolicyFactory
    #: None for a backend whose argument is not a checkpoint path (``scripted``, ``remote``).
    find_checkpoints: CheckpointFinder | None = None
    #: None for a backend whose policies carry no card (``scripted``).
    read_card: CardReader | None = None


_BACKENDS: dict[str, Backend] = {}

#: backend name -> (module that registers it on import, Pants target that runs the sweep in its resolve)
KNOWN_BACKENDS: dict[str, tuple[str, str]] = {
    "scripted": ("libs.sim.scripted_backend", "services/eval:sweep"),
    "remote": ("libs.policy_api.remote", "services/eval:sweep"),
    "torch_lerobot": ("backends.torch_lerobot.backend", "services/eval:sweep-torch_lerobot"),
    "jax_openpi": ("backends.jax_openpi.backend", "services/eval:sweep-jax_openpi"),
}


def register_backend(
    name: str,
    load_policy: PolicyFactory,
    *,
    find_checkpoints: CheckpointFinder | None = None,
    read_card: CardReader | None = None,
) -> None:
    """Called by a backend module at import time. ``load_policy`` and ``read_card`` receive the text after
    ``name:``; ``find_checkpoints`` a path."""
    _BACKENDS[name] = Backend(name, load_policy, find_checkpoints, read_card)


def import_on_first_load(module: str, name: str) -> PolicyFactory:
    """``module.load_policy``, imported when the first policy is loaded, so that registering a backend does
    not import its stack. (A string import: the backend's BUILD names ``module`` as a dependency.)"""

    def load_policy(argument: str) -> Policy:
        try:
            loaded = importlib.import_module(module)
        except ImportError as error:
            raise _not_installed(name, error) from error
        return loaded.load_policy(argument)

    return load_policy


def _not_installed(name: str, error: ImportError) -> PolicyLoadError:
    return PolicyLoadError(
        f"backend {name!r} is not installed in this resolve ({error.name or error}): "
        f"run `./pants run {KNOWN_BACKENDS[name][1]} -- ...` instead"
    )


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
        module = KNOWN_BACKENDS[name][0]
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise _not_installed(name, error) from error
        if name not in _BACKENDS:
            raise PolicyLoadError(f"module {module} did not register backend {name!r}")
    return _BACKENDS[name]


def make_policy(uri: str) -> Policy:
    """``scripted``, ``torch_lerobot:<dir>``, ``jax_openpi:<dir>`` or ``remote:ws://host:port``."""
    name, argument = split_policy_uri(uri)
    return backend(name, uri).load_policy(argument)


def read_card(uri: str) -> CheckpointCard | None:
    """The card of the checkpoint ``uri`` names, without loading its model; None for a policy that carries
    none (``scripted``)."""
    name, argument = split_policy_uri(uri)
    reader = backend(name, uri).read_card
    return reader(argument) if reader is not None else None
