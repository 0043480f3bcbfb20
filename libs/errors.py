"""``LabError``: the base of every error a user can cause and fix (bad input, a missing file, a policy that
breaks its contract), whose message is one line naming the problem and the fix.

Each command's ``main`` catches it once (``one_line_errors``) and prints ``error: <message>`` with exit
status 2; anything else is a bug and keeps its traceback. The specific classes keep a builtin base too
(``ValueError``, ``RuntimeError``, ...), so code that catches those still does.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec

#: The exit status of a command stopped by a ``LabError``.
USAGE_EXIT_STATUS = 2

P = ParamSpec("P")


class LabError(Exception):
    """A user-facing error: one line naming the problem and the fix (module docstring)."""


def one_line_errors(main: Callable[P, int]) -> Callable[P, int]:
    """Wraps a command's ``main``: a ``LabError`` becomes one ``error:`` line on stderr and exit status 2."""

    @functools.wraps(main)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except LabError as error:
            print(f"error: {error}", file=sys.stderr)
            return USAGE_EXIT_STATUS

    return guarded
