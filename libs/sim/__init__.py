"""The SO-101 pick-and-place simulation: scene config, gymnasium env, IK, outcomes, scripted expert.

The headless OpenGL backend is picked by ``libs/__init__.py``, which Python runs before this package.
"""
