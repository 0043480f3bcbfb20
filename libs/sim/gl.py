"""Offscreen renderers, with one clear line when no OpenGL backend can be created.

Headless machines need ``MUJOCO_GL=egl`` (Debian: ``apt-get install libegl1 libgl1-mesa-dri``) or
``MUJOCO_GL=osmesa`` (``apt-get install libosmesa6``). ``libs/__init__.py`` picks EGL when nothing is set
and there is no display, because GLFW, MuJoCo's default, needs a window system.
"""

from __future__ import annotations

import os

import mujoco

from libs.errors import LabError

_PACKAGES = {
    "egl": "apt-get install libegl1 libgl1-mesa-dri",
    "osmesa": "apt-get install libosmesa6",
    "glfw": "a display (DISPLAY) or switch to MUJOCO_GL=egl",
}


class GLBackendError(LabError, RuntimeError):
    """No MuJoCo renderer could be created; the message names the fix."""


def gl_backend_name() -> str:
    return os.environ.get("MUJOCO_GL", "glfw (MuJoCo's default)")


def make_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    """A ``mujoco.Renderer`` of exactly ``height`` × ``width``, or GLBackendError naming the fix."""
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as error:  # mujoco raises several types (RuntimeError, ImportError, AttributeError)
        backend = os.environ.get("MUJOCO_GL", "").lower()
        hint = _PACKAGES.get(backend, "set MUJOCO_GL=egl or MUJOCO_GL=osmesa")
        raise GLBackendError(
            f"cannot create a MuJoCo renderer with MUJOCO_GL={backend or 'unset'} ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[0] if str(error).strip() else 'no detail'}): headless, set "
            f"MUJOCO_GL=egl (Debian: {_PACKAGES['egl']}) or MUJOCO_GL=osmesa ({_PACKAGES['osmesa']}); "
            f"for this backend: {hint}; or run the env with render=False"
        ) from error


def gl_renderer_string() -> str:
    """The OpenGL vendor/renderer of the current context (e.g. 'Mesa llvmpipe'), or '' if unavailable."""
    try:
        # PyOpenGL comes with mujoco (not a direct requirement, hence no inferred dependency).
        from OpenGL import GL  # pants: no-infer-dep

        vendor = GL.glGetString(GL.GL_VENDOR)
        renderer = GL.glGetString(GL.GL_RENDERER)
        return f"{vendor.decode()} / {renderer.decode()}" if vendor and renderer else ""
    except Exception:
        return ""
