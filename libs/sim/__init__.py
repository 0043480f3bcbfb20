"""The SO-101 pick-and-place simulation: scene config, gymnasium env, IK, outcomes, scripted expert.

Importing this package picks a headless OpenGL backend when the user chose none and there is no display:
MuJoCo's default (GLFW) needs a window system, EGL works on any Linux with Mesa. This must happen before
``mujoco`` is first imported, which is why it lives here.
"""

import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
if os.environ.get("MUJOCO_GL") in ("egl", "osmesa") and "PYOPENGL_PLATFORM" not in os.environ:
    os.environ["PYOPENGL_PLATFORM"] = os.environ["MUJOCO_GL"]
