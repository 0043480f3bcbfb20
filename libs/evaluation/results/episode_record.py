"""One evaluated episode, as the runner returns it and the results store keeps it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class EpisodeRecord:
    """Everything the report needs about one (checkpoint, arm, seed) episode. Flat, so it maps to one table
    row."""

    checkpoint_id: str
    seed: int
    step: int | None
    outcome: str
    steps: int
    picked: bool
    pick_step: int | None
    max_block_height_m: float
    ik_failures: int
    ik_error_mm_mean: float | None
    inferences: int
    latency_mean_ms: float
    latency_p95_ms: float
    wall_time_s: float
    action_space: str
    #: The block's initial table position (metres), so spatial maps work for random seeds too.
    block_x: float | None = None
    block_y: float | None = None
    #: Set in --grid mode: the requested block position's cell (column, row).
    grid_col: int | None = None
    grid_row: int | None = None
    #: Why the harness stopped this episode (outcome ``contract_violation``), else None.
    violation: str | None = None
    #: Progress score in [0, 1]: the furthest task milestone reached (libs.sim.outcome.PROGRESS_STAGES) over
    #: the last; None in stores written before it existed.
    progress: float | None = None
    #: The first decisive failure of a failed episode (``libs.sim.failures.FAILURE_KINDS``), its headline
    #: number (metres, or seconds for a stall) and the sentence naming it and the failures after it; None
    #: for successes, contract violations, and episodes no failure pattern matched.
    failure: str | None = None
    failure_value: float | None = None
    failure_detail: str | None = None
    #: The perturbation arm (libs.sim.perturbations) the checkpoint played under; "" for its control.
    arm: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.checkpoint_id, self.arm, self.seed)

    @property
    def is_control(self) -> bool:
        return not self.arm

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in names})


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EpisodeRecord))


@dataclass(frozen=True)
class RecordLabel:
    """What a record says about where its episode came from: checkpoint, training step, ``--grid`` cell,
    perturbation arm ("" for the control)."""

    checkpoint_id: str = ""
    step: int | None = None
    grid_cell: tuple[int, int] | None = None
    arm: str = ""
