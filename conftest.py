"""Every test's first import: ``libs`` picks the headless GL backend before a test module imports mujoco."""

import libs  # noqa: F401
