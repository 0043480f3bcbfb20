"""Backends by name: ``torch_lerobot:/runs/act/checkpoints/010000`` → a policy, its checkpoints, its card.

The harness names no stack. Each backend module registers, when imported, what only it knows:
``load_policy`` (the text after ``name:`` → a ``Policy``), ``find_checkpoints`` (a run or checkpoint path →
its checkpoints in step order, in that backend's own folder layout) and ``read_card`` (a checkpoint → its
``CheckpointCard``). The table below only says *where* a backend lives, so it can be imported on demand;
when its stack is not in the current resolve the user is told which Pants target to run instead. Which
backends a binary holds comes from one aggregate target per resolve (``backends:<resolve>``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from libs.policy_api.types import Policy

if TYPE_CHECKING:
    from libs.policy_api.card import CheckpointCard


class PolicyLoadError(RuntimeError):
    """A policy string could not be turned into a policy; the message names the fix."""


@dataclass(frozen=True)
class FoundCheckpoint:
    """One checkpoint a backend found: ``path`` is what its ``load_policy`` and ``read_card`` accept."""

    checkpoint_id: str
    path: Path
    step: int | None


@dataclass(frozen=True)
class Backend:
    name: str
    load_policy: Callable[[str], Policy]
    #: Path → its checkpoints in step order; None for backends whose argument is not a path.
    find_checkpoints: Callable[[Path], list[FoundCheckpoint]] | None = None
    #: The argument after ``name:`` → the checkpoint's card (None when it has none).
    read_card: Callable[[str], CheckpointCard | None] | None = None


_BACKENDS: dict[str, Backend] = {}

#: backend name -> (module that registers it on import, Pants target that runs the sweep in its resolve)
KNOWN_BACKENDS: dict[str, tuple[str, str]] = {
    "scripted": ("libs.sim.scripted_policy", "services/eval:sweep"),
    "remote": ("libs.policy_api.remote", "services/eval:sweep"),
    "torch_lerobot": ("backends.torch_lerobot.backend", "services/eval:sweep-torch_lerobot"),
    "jax_openpi": ("backends.jax_openpi.backend", "services/eval:sweep-jax_openpi"),
}


def register_backend(
    name: str,
    load_policy: Callable[[str], Policy],
    *,
    find_checkpoints: Callable[[Path], list[FoundCheckpoint]] | None = None,
    read_card: Callable[[str], CheckpointCard | None] | None = None,
) -> None:
    """Called by a backend module at import time."""
    _BACKENDS[name] = Backend(name, load_policy, find_checkpoints, read_card)


def import_on_first_load(module: str) -> Callable[[str], Policy]:
    """``module.load_policy``, imported at the first load: registering a backend stays free of its stack.
    (A string import: the backend's BUILD names ``module`` as a dependency of the registering file.)"""

    def load_policy(argument: str) -> Policy:
        return importlib.import_module(module).load_policy(argument)

    return load_policy


def split_policy_uri(uri: str) -> tuple[str, str]:
    name, _, argument = uri.partition(":")
    return name.strip(), argument.strip()


def backend(name: str, uri: str | None = None) -> Backend:
    """The registered backend ``name`` (of the policy string ``uri``), importing its module on first use."""
    if name not in _BACKENDS:
        if name not in KNOWN_BACKENDS:
            known = ", ".join(sorted(KNOWN_BACKENDS))
            where = f" in {uri!r}" if uri else ""
            raise PolicyLoadError(f"unknown policy backend {name!r}{where}: use one of {known}")
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
    """The card of the checkpoint ``uri`` names, or None for a policy without one (``scripted``)."""
    name, argument = split_policy_uri(uri)
    reader = backend(name, uri).read_card
    return reader(argument) if reader is not None else None
