"""``BackboneError``, in a module of its own so that ``backbones`` and ``tiny_backbones`` both raise it
without importing each other (``backbones`` re-exports it)."""

from __future__ import annotations

from libs.errors import LabError


class BackboneError(LabError, RuntimeError):
    """The backbone named on the command line cannot be used; the message names the fix."""
