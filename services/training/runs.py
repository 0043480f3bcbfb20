"""A list of training runs, and which of them are finished: what the training runner is handed.

A ``TrainingRun`` is one train command (a backend's ``train`` module and its flags), the folder it writes,
the path that exists once it is done (its last checkpoint, which both trainers write whole or not at all:
``checkpoints/.partial/`` then a rename for LeRobot, orbax's temporary folder for JAX) and the resources it
asks for. A run is *finished* when that checkpoint exists and its stamp (``services/quickstart/stamps.py``,
the stage stamps of the quickstart and the learning-curve grid) says it was made by this command from these
inputs and finished; ``.NAME.training.json`` beside the folder then records where and how long it trained.
A run that is not finished is started, or continued from its last complete checkpoint by its own trainer
(LeRobot's with ``--resume``, JAX's by itself); one made by another command is moved aside first, never
deleted.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from libs.errors import LabError
from services.quickstart import stamps
from services.quickstart.quickstart import move_aside

RECORD_SUFFIX = ".training.json"


class TrainingRunError(LabError, RuntimeError):
    """A run list that cannot be trained as given, or a run that failed; the message names the fix."""


@dataclass(frozen=True)
class Trainer:
    """A backend's train command: the module whose ``main(argv)`` trains, its own Pants target, and the
    runner target of its resolve (the two stacks live in different resolves)."""

    module: str
    train_target: str
    runner_target: str
    #: what makes the command continue an unfinished run in its --out (the JAX trainer does by itself)
    resume_flags: tuple[str, ...] = ()

    def resuming(self, argv: Sequence[str]) -> list[str]:
        """``argv`` with this trainer's resume flags (a run with no checkpoint yet starts from step 0)."""
        return [*argv, *(flag for flag in self.resume_flags if flag not in argv)]


TRAINERS: dict[str, Trainer] = {
    "torch_lerobot": Trainer(
        "backends.torch_lerobot.train",
        "backends/torch_lerobot:train",
        "services/training:train-runs-torch_lerobot",
        ("--resume",),
    ),
    "jax_openpi": Trainer(
        "backends.jax_openpi.train", "backends/jax_openpi:train", "services/training:train-runs-jax_openpi"
    ),
}


def trainer_of_target(train_target: str) -> str:
    """The backend name whose train command is the Pants target ``train_target``."""
    for name, trainer in TRAINERS.items():
        if trainer.train_target == train_target:
            return name
    raise TrainingRunError(f"no trainer runs {train_target}: use one of {', '.join(TRAINERS)}")


@dataclass(frozen=True)
class TrainingRun:
    """One train command and what it writes; ``threads`` CPUs (and a GPU when ``gpu`` and a node has one)
    are reserved for it on Ray."""

    name: str
    trainer: str
    argv: tuple[str, ...]
    #: the run folder the command writes (its ``--out``)
    output: Path
    #: exists once the run is done: its last checkpoint
    done_marker: Path
    threads: int = 1
    gpu: bool = False
    #: what the stamp must say the output was made with (default: ``argv``)
    fingerprint: tuple[str, ...] | None = None
    #: outputs the run reads whose remaking makes it stale (a dataset made by an earlier stage)
    inputs: tuple[Path, ...] = field(default=())

    def stamp_fingerprint(self) -> list[str]:
        return list(self.fingerprint if self.fingerprint is not None else self.argv)

    def to_json(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.update(
            argv=list(self.argv),
            output=str(self.output),
            done_marker=str(self.done_marker),
            fingerprint=None if self.fingerprint is None else list(self.fingerprint),
            inputs=[str(path) for path in self.inputs],
        )
        return fields

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> TrainingRun:
        fingerprint = fields.get("fingerprint")
        return cls(
            name=str(fields["name"]),
            trainer=str(fields["trainer"]),
            argv=tuple(str(part) for part in fields["argv"]),
            output=Path(fields["output"]),
            done_marker=Path(fields["done_marker"]),
            threads=int(fields.get("threads", 1)),
            gpu=bool(fields.get("gpu", False)),
            fingerprint=None if fingerprint is None else tuple(str(part) for part in fingerprint),
            inputs=tuple(Path(path) for path in fields.get("inputs", ())),
        )


def write_runs_file(path: Path, runs: Sequence[TrainingRun]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"runs": [run.to_json() for run in runs]}, indent=2) + "\n")
    return path


def read_runs_file(path: Path) -> list[TrainingRun]:
    """The runs of a runs file (``write_runs_file``'s), checked: names unique, trainers known, threads ≥ 1."""
    try:
        runs = [TrainingRun.from_json(fields) for fields in json.loads(path.read_text())["runs"]]
    except OSError as error:
        raise TrainingRunError(
            f"cannot read the runs file {path} ({error.strerror}): check the path"
        ) from None
    except (ValueError, KeyError, TypeError) as error:
        raise TrainingRunError(
            f"the runs file {path} is not a list of training runs ({type(error).__name__}: {error}): "
            'write it as {"runs": [{"name", "trainer", "argv", "output", "done_marker", ...}]}'
        ) from None
    check_runs(runs)
    return runs


def check_runs(runs: Sequence[TrainingRun]) -> None:
    names = [run.name for run in runs]
    for run in runs:
        if names.count(run.name) > 1:
            raise TrainingRunError(f"two runs are named {run.name!r}: give each run its own name")
        if run.trainer not in TRAINERS:
            raise TrainingRunError(
                f"run {run.name} names trainer {run.trainer!r}: use one of {', '.join(TRAINERS)}"
            )
        if run.threads < 1:
            raise TrainingRunError(f"run {run.name} asks for {run.threads} threads: give at least 1")


def check_trainers_installed(runs: Sequence[TrainingRun]) -> None:
    """Every run's trainer can be imported here (and so by this resolve's Ray workers), before Ray starts."""
    for run in runs:
        trainer = TRAINERS[run.trainer]
        try:
            found = importlib.util.find_spec(trainer.module.rsplit(".", 1)[0]) is not None
        except ModuleNotFoundError:  # not even its parent package
            found = False
        if not found:
            raise TrainingRunError(
                f"run {run.name} trains with {run.trainer}, which is not installed in this resolve: run "
                f"`./pants run {trainer.runner_target} -- ...` instead"
            )


def task_resources(run: TrainingRun, cluster_gpus: float) -> dict[str, int]:
    """What the run's Ray task reserves: its threads as CPUs, and a GPU when it asks for one and the
    cluster has one (else it trains on CPU: the trainers pick CUDA only where they see it)."""
    return {"num_cpus": run.threads, "num_gpus": 1 if run.gpu and cluster_gpus >= 1 else 0}


def record_path(output: Path) -> Path:
    """``.NAME.training.json`` beside the run folder (hidden, as the stamp is: the folder holds only what
    its trainer wrote)."""
    return output.with_name(f".{output.name}{RECORD_SUFFIX}")


def is_finished(run: TrainingRun) -> bool:
    """Its last checkpoint exists and its stamp says this command made it, from these inputs, to the end."""
    stamp = stamps.read_stamp(run.output)
    return (
        run.done_marker.exists()
        and stamp is not None
        and stamp.finished
        and stamps.why_stale(stamp, run.stamp_fingerprint(), stamps.input_ids(run.inputs)) is None
    )


def begin(run: TrainingRun) -> str | None:
    """Ready ``run`` to train: a folder made by another command is moved aside (its stamp with it), one of
    this command's is continued; stamps it unfinished. Returns what was done to an existing folder."""
    stamp = stamps.read_stamp(run.output)
    inputs_now = stamps.input_ids(run.inputs)
    made_id = stamps.new_made_id()
    said = None
    if run.output.exists():
        stale = stamps.why_stale(stamp, run.stamp_fingerprint(), inputs_now) if stamp is not None else None
        if stale is not None:
            kept = move_aside(run.output, "stale")
            for beside in (stamps.stamp_path, record_path):  # the kept copy still says what made it
                if beside(run.output).exists():
                    beside(run.output).rename(beside(kept))
            said = f"its earlier output was {stale}: moved to {kept}"
        else:
            made_id = stamp.made_id if stamp is not None else made_id
            said = f"continuing the unfinished {run.output}"
    stamps.write_stamp(run.output, stamps.Stamp(run.stamp_fingerprint(), inputs_now, made_id, finished=False))
    return said


def finish(run: TrainingRun, result: dict[str, Any]) -> None:
    """stamps.Stamp ``run`` finished and write its record, once its trainer returned; a trainer that returned
    without its last checkpoint is an error (the run stays unfinished)."""
    if not run.done_marker.exists():
        raise TrainingRunError(
            f"run {run.name}: the trainer ended without writing {run.done_marker}: check the run's --steps "
            f"and the done marker, see {result.get('log')}"
        )
    stamp = stamps.read_stamp(run.output)
    made_id = stamp.made_id if stamp is not None else stamps.new_made_id()
    record = record_path(run.output)
    partial = record.with_name(record.name + ".partial")
    partial.write_text(json.dumps({"name": run.name, "trainer": run.trainer, **result}, indent=2) + "\n")
    os.replace(partial, record)
    stamps.write_stamp(
        run.output,
        stamps.Stamp(run.stamp_fingerprint(), stamps.input_ids(run.inputs), made_id, finished=True),
    )


def read_record(output: Path) -> dict[str, Any] | None:
    try:
        return json.loads(record_path(output).read_text())
    except (OSError, ValueError):
        return None
