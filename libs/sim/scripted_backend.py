"""The ``scripted`` backend: the scripted expert by name (``scripted``, ``scripted:ee``,
``scripted:noise=DEG``, ``scripted:fault=NAME``), registered when this module is imported
(``libs.policy_api.registry``)."""

from __future__ import annotations

from libs.policy_api.registry import PolicyLoadError, register_backend
from libs.sim.faulty_expert import FAULTS, FaultyExpert
from libs.sim.scripted_policy import ScriptedPolicy


def load_policy(argument: str) -> ScriptedPolicy:
    """``scripted``, ``scripted:ee`` / ``scripted:joint``, ``scripted:noise=DEG`` (joint, degraded),
    ``scripted:fault=NAME`` (joint, commits one failure: ``libs.sim.faulty_expert``)."""
    action_space, noise, fault = "joint", 0.0, None
    for token in filter(None, (part.strip() for part in argument.split(","))):
        if token in ("joint", "ee"):
            action_space = token
        elif token.startswith("fault="):
            fault = token.removeprefix("fault=")
        elif token.startswith("noise="):
            try:
                noise = float(token.removeprefix("noise="))
            except ValueError:
                noise = -1.0
            if not noise >= 0:
                raise PolicyLoadError(
                    f"scripted:{argument}: noise must be degrees >= 0, e.g. scripted:noise=8"
                )
        else:
            raise PolicyLoadError(
                f"scripted policy takes 'joint' or 'ee' (and noise=DEG) after 'scripted:', got {argument!r}"
            )
    if noise and action_space == "ee":
        raise PolicyLoadError("scripted: noise=DEG applies to joint actions: drop 'ee' or the noise")
    if fault is not None:
        if fault not in FAULTS or action_space == "ee" or noise:
            raise PolicyLoadError(
                f"scripted:{argument}: fault= takes one of {', '.join(FAULTS)}, joint actions, no noise"
            )
        return FaultyExpert(fault)
    return ScriptedPolicy(action_space=action_space, action_noise_deg=noise)


register_backend("scripted", load_policy)
