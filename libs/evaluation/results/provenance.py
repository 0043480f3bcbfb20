"""What produced a results folder: the exact command (``command.txt``, a line appended on every start and
resume), the package versions (``versions.json``) and the scene each checkpoint was evaluated in
(``scenes/<checkpoint>.json``: cameras, FOV, image size, objects). Written when the folder is opened, before
the first episode, so a sweep killed at any point still says how to resume it."""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

COMMAND_FILE = "command.txt"
VERSIONS_FILE = "versions.json"
SCENES_DIR = "scenes"
#: Packages whose versions decide a result; the ones not installed in a resolve are skipped.
VERSIONED_PACKAGES = (
    "numpy",
    "mujoco",
    "so101-nexus",
    "mink",
    "gymnasium",
    "ray",
    "torch",
    "lerobot",
    "jax",
    "flax",
    "openpi-client",
)


def write_provenance(
    out_dir: str | Path,
    argv: Sequence[str] | None = None,
    scenes: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """The exact command and the package versions that produced this folder (the command appended on every
    resume), and ``scenes`` (file name -> scene.json contents) under ``scenes/``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if scenes:
        (out / SCENES_DIR).mkdir(exist_ok=True)
    for name, scene in (scenes or {}).items():
        (out / SCENES_DIR / f"{name}.json").write_text(json.dumps(scene, indent=2, sort_keys=True) + "\n")
    command = shlex.join(list(argv) if argv is not None else sys.argv)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with (out / COMMAND_FILE).open("a") as handle:
        handle.write(f"# {stamp} in {Path.cwd()}\n{command}\n")
    versions: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    versions["git_commit"] = _git_commit()
    (out / VERSIONS_FILE).write_text(json.dumps(versions, indent=2) + "\n")


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None
