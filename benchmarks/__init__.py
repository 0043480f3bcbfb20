"""Scripts that measure speed and print a table (never timing asserts in tests).

Imports ``libs`` first: its ``__init__`` picks the headless GL backend before anything imports mujoco.
"""

import libs  # noqa: F401  (libs/__init__.py picks the headless GL backend before mujoco is imported)
