"""Stack-free libraries of the lab (numpy, mujoco, ray): no torch, no jax.

Importing this package picks the headless OpenGL backend, the one place that does so. MuJoCo chooses its
renderer's GL platform when ``mujoco`` is first imported, and its default (GLFW) needs a window system, so
on a machine without a display and without a user's choice every renderer would fail. Python runs this
file before any module below ``libs``, and the other top-level packages (``scenes``, ``backends``,
``services``, ``benchmarks``) and the root ``conftest.py`` import it first, so the choice is made before
any entry point or test can import ``mujoco``, whatever order a module lists its imports in.
A user's own ``MUJOCO_GL`` / ``PYOPENGL_PLATFORM`` always win.
"""

import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
if os.environ.get("MUJOCO_GL") in ("egl", "osmesa") and "PYOPENGL_PLATFORM" not in os.environ:
    os.environ["PYOPENGL_PLATFORM"] = os.environ["MUJOCO_GL"]
