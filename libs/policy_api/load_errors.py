"""``PolicyLoadError``: a policy string could not be turned into a policy (or its checkpoints and card
read). Its own module so that the registry, the card and the checkpoint-folder walk all raise it without
importing each other."""

from __future__ import annotations

from libs.errors import LabError


class PolicyLoadError(LabError, RuntimeError):
    """A policy string could not be turned into a policy; the message names the fix."""
