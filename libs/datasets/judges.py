"""Episode judges: decide from an episode's frames whether it succeeded, when no simulator says so; and
``keep_filter``, the one parser of ``--keep`` (record, rollouts, convert filter).

A judge is named by a string such as ``classifier:/runs/success_clf`` (the visual success classifier, a
torch model in ``backends/torch_lerobot``). Like the policy registry, the backend module registers its
factory when imported; libs never import it directly, and the user is told which resolve to run in when
its stack is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from libs.datasets.lerobot_v3 import DatasetError

#: (episode metadata, frames by feature key) -> does the episode count as a success?
EpisodeJudge = Callable[[Mapping[str, Any], Mapping[str, np.ndarray]], bool]
JudgeFactory = Callable[[str], EpisodeJudge]

_FACTORIES: dict[str, JudgeFactory] = {}
#: judge name -> (module that registers it, Pants target to run in its resolve)
KNOWN_JUDGES: dict[str, tuple[str, str]] = {
    "classifier": ("backends.torch_lerobot.success_classifier", "backends/torch_lerobot:rollouts"),
}


def register_judge(name: str, factory: JudgeFactory) -> None:
    _FACTORIES[name] = factory


def make_judge(uri: str) -> EpisodeJudge:
    name, _, argument = uri.partition(":")
    if name not in _FACTORIES:
        if name not in KNOWN_JUDGES:
            raise DatasetError(
                f"unknown episode judge {name!r} in {uri!r}: use one of {sorted(KNOWN_JUDGES)}"
            )
        module, target = KNOWN_JUDGES[name]
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise DatasetError(
                f"judge {name!r} needs {module} ({error.name or error} is not installed in this resolve): "
                f"run `./pants run {target} -- ...` instead"
            ) from error
    return _FACTORIES[name](argument)


def keep_filter(keep: str | None) -> EpisodeJudge | None:
    """``--keep``: ``None``, ``""`` or ``all`` keep every episode (None: nothing to filter); ``NAME:ARG`` is
    an episode judge (``classifier:DIR``, ``make_judge``); anything else a comma-separated list of outcomes
    (``success``, ``success,missed_goal``), checked against ``libs.sim.outcome.Outcome``, that keeps the
    episodes whose metadata names one of them (frames unread)."""
    if keep in (None, "", "all"):
        return None
    if ":" in keep:
        return make_judge(keep)
    from libs.sim.outcome import Outcome

    wanted = {name.strip() for name in keep.split(",") if name.strip()}
    unknown = wanted - {str(outcome) for outcome in Outcome}
    if unknown:
        names = ", ".join(str(outcome) for outcome in Outcome)
        raise DatasetError(f"--keep {keep!r}: unknown outcome {sorted(unknown)}; use one of {names}")
    return lambda metadata, frames: metadata.get("outcome") in wanted
