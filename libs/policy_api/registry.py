"""Builds a policy from a string such as ``torch_lerobot:/runs/act/checkpoints/010000``.

The harness names no stack: each backend module registers a factory when imported. The table below only
says *where* a backend lives so that it can be imported on demand; when its stack is not installed in the
current resolve the user is told which Pants target to run instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from libs.policy_api.types import Policy

PolicyFactory = Callable[[str], Policy]


class PolicyLoadError(RuntimeError):
    """A policy string could not be turned into a policy; the message names the fix."""


_FACTORIES: dict[str, PolicyFactory] = {}

#: backend name -> (module that registers it on import, Pants target that runs the sweep in its resolve)
KNOWN_BACKENDS: dict[str, tuple[str, str]] = {
    "scripted": ("libs.sim.scripted_policy", "services/eval:sweep"),
    "remote": ("libs.policy_api.remote", "services/eval:sweep"),
    "torch_lerobot": ("backends.torch_lerobot.adapter", "services/eval:sweep-torch_lerobot"),
    "jax_openpi": ("backends.jax_openpi.adapter", "services/eval:sweep-jax_openpi"),
}


def register_backend(name: str, factory: PolicyFactory) -> None:
    """Called by a backend module at import time. ``factory`` receives the text after ``name:``."""
    _FACTORIES[name] = factory


def registered_backends() -> set[str]:
    """Backends registered in this process so far (the built-in ones register when first imported)."""
    return set(_FACTORIES)


def split_policy_uri(uri: str) -> tuple[str, str]:
    name, _, argument = uri.partition(":")
    return name.strip(), argument.strip()


def make_policy(uri: str) -> Policy:
    """``scripted``, ``torch_lerobot:<dir>``, ``jax_openpi:<dir>`` or ``remote:ws://host:port``."""
    name, argument = split_policy_uri(uri)
    if name not in _FACTORIES:
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
        if name not in _FACTORIES:
            raise PolicyLoadError(f"module {module} did not register backend {name!r}")
    return _FACTORIES[name](argument)
