"""Commands and servers built on libs and the backends.

Imports ``libs`` first: its ``__init__`` picks the headless GL backend before anything imports mujoco.
"""

import libs  # noqa: F401  (libs/__init__.py picks the headless GL backend before mujoco is imported)
