"""``SweepConfig``: what a sweep is asked to do. Its fields are the sweep command's flags
(``libs.config_flags``): the help text sits beside the setting it sets, and ``services/eval/sweep.py`` builds
its parser and the config from them."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libs.config_flags import comma_list, flag
from libs.evaluation.plan.select_best import SelectBest
from libs.evaluation.plan.stop_when_decided import UntilDecided
from libs.evaluation.plan.tasks import EnvSettings
from libs.viz.whiskers import WHISKER_MODES


def parse_grid(text: str) -> tuple[int, int]:
    """``5x4`` (or ``5``, square) → (columns, rows)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[x×,]\s*(\d+))?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"--grid {text!r} is not COLUMNSxROWS: e.g. --grid 5x5 or --grid 5")
    columns = int(match.group(1))
    rows = int(match.group(2) or columns)
    if columns < 1 or rows < 1:
        raise argparse.ArgumentTypeError(f"--grid {text!r} needs at least one column and row")
    return (columns, rows)


@dataclass
class SweepConfig:
    policy: str = field(
        metadata=flag(
            "scripted | torch_lerobot:<run, checkpoints dir or checkpoint> | jax_openpi:<...> | "
            "remote:ws://host:port (a run or checkpoints dir expands to each checkpoint)",
            required=True,
        )
    )
    episodes: int = field(default=10, metadata=flag("seeds per checkpoint (default 10)"))
    base_seed: int = field(
        default=0, metadata=flag("first seed (all checkpoints share the seeds)", name="--seed")
    )
    #: (columns, rows): evaluate on a regular grid of block positions instead of random seeds.
    grid: tuple[int, int] | None = field(
        default=None,
        metadata=flag(
            "evaluate on a COLUMNSxROWS grid of block positions over the scene's block region instead of "
            "random seeds, and draw a spatial success map",
            parse=parse_grid,
            metavar="CxR",
        ),
    )
    env: EnvSettings = field(default_factory=EnvSettings)
    workers: int | None = field(default=None, metadata=flag("parallel episodes (default: all cores)"))
    ray_address: str | None = field(
        default=None, metadata=flag("join this Ray cluster (host:port, ray://host:port or auto)")
    )
    serial: bool = field(default=False, metadata=flag("run in this process without Ray"))
    #: No episode finishing for this long means a worker hangs.
    episode_timeout_s: float = field(
        default=600.0,
        metadata=flag("seconds without any finished episode = hung", name="--episode-timeout"),
    )
    #: Dataset whose recorded block positions are drawn on the --grid map (else each checkpoint card's).
    training_data: str | None = field(
        default=None,
        metadata=flag(
            "dataset root whose recorded block positions the --grid map overlays "
            "(default: the block positions each checkpoint's card carries)"
        ),
    )
    progress: bool = field(default=True, metadata=flag("no progress bar", name="--no-progress"))
    #: Episodes per checkpoint played again with whiskers (libs.viz: videos, plots, likely causes in the
    #: report), in this process after the sweep; 0 = none.
    whiskers: int = field(
        default=0,
        metadata=flag(
            "per checkpoint, play N episodes again (failures first) with whiskers: videos and plots in "
            "OUT/whiskers/, likely causes of failure in the report (default 0)",
            metavar="N",
        ),
    )
    whiskers_mode: str = field(
        default="dynamic",
        metadata=flag(
            "dynamic: chunks forward-simulated with physics and contacts (default); kinematic: joints "
            "placed at targets, no contacts (faster)",
            choices=WHISKER_MODES,
        ),
    )
    #: A second policy scored on the same seeds (its checkpoints follow ``policy``'s).
    compare_to: str | None = field(
        default=None,
        metadata=flag(
            "a second policy (same forms as --policy) scored on the same seeds, e.g. with --until-decided",
            metavar="POLICY",
        ),
    )
    #: Run in rounds until the sequential test decides (``episodes`` is then ignored: the budget rules).
    until_decided: UntilDecided | None = None
    #: Rounds until the best checkpoint is found within --epsilon (``episodes`` ignored: the budget rules).
    select_best: SelectBest | None = None
    #: Perturbation arms of the --scene to run on the same seeds as each checkpoint (("all",) = every one).
    perturbations: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "also run these perturbation arms declared in the --scene's 'perturbations' list on the same "
            "seeds, and report each arm's paired difference from the unperturbed control",
            parse=comma_list,
            metavar="all|NAME,NAME",
        ),
    )

    def settings(self) -> dict[str, Any]:
        """What decides the results; a resumed sweep must repeat these exactly."""
        scene_text = Path(self.env.scene_path).read_text() if self.env.scene_path else None
        return {
            "policy": self.policy,
            "base_seed": self.base_seed,
            "grid": list(self.grid) if self.grid else None,
            "scene": json.loads(scene_text)
            if scene_text
            else "each checkpoint's own (else the bench default)",
            "max_steps": self.env.max_steps,
            "task": self.env.task,
            # Only when set, so stores written before these options existed still resume.
            **({"compare_to": self.compare_to} if self.compare_to else {}),
            **({"until_decided": self.until_decided.settings()} if self.until_decided else {}),
            **({"select_best": self.select_best.settings()} if self.select_best else {}),
            **({"perturbations": list(self.perturbations)} if self.perturbations else {}),
            # Batched sampling draws one batch's noise together: the batch size decides those episodes.
            **({"lockstep_envs": self.env.lockstep_envs} if self.env.lockstep_envs > 1 else {}),
        }
