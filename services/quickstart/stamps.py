"""A stage's stamp: which command made an output, and from which versions of its inputs.

A rerun of the quickstart (or of the learning-curve grid) skips a stage whose output is finished. An output
that merely exists is not enough: ``--size tiny`` and then the default size into the same ``--out`` would
otherwise train on two demonstrations and report a sweep of the tiny run's checkpoints. So each stage keeps,
beside its output, a small JSON file with the command's fingerprint (its arguments), the ids of the inputs
it read and an id of its own, drawn anew each time the output is made from scratch: a stage is stale when
its fingerprint differs or when one of its inputs was made again since.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

STAMP_SUFFIX = ".stage.json"


@dataclass(frozen=True)
class Stamp:
    #: what the output was made with (a stage's arguments, or the part of them that decides the output)
    fingerprint: list[str]
    #: each input's path and the id of its stamp when this output was made (None: the input had none)
    inputs: dict[str, str | None]
    #: drawn anew whenever the output is made from scratch; kept when an unfinished output is continued
    made_id: str
    finished: bool


def stamp_path(output: Path) -> Path:
    """Beside the output, hidden, so that a dataset or run folder holds only what its own tools wrote."""
    return output.with_name(f".{output.name}{STAMP_SUFFIX}")


def new_made_id() -> str:
    return uuid.uuid4().hex


def read_stamp(output: Path) -> Stamp | None:
    """The output's stamp, or None when it has none (made before stamps existed) or it cannot be read."""
    try:
        fields = json.loads(stamp_path(output).read_text())
        return Stamp(
            fingerprint=[str(part) for part in fields["fingerprint"]],
            inputs={str(path): made_id for path, made_id in fields["inputs"].items()},
            made_id=str(fields["made_id"]),
            finished=bool(fields["finished"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_stamp(output: Path, stamp: Stamp) -> None:
    path = stamp_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(asdict(stamp), indent=2) + "\n")
    os.replace(partial, path)


def input_ids(inputs: Sequence[Path]) -> dict[str, str | None]:
    """The current id of each input's output (None for an input without a stamp)."""
    ids: dict[str, str | None] = {}
    for path in inputs:
        stamp = read_stamp(path)
        ids[str(path)] = stamp.made_id if stamp is not None else None
    return ids


def _first_difference(made_with: Sequence[str], asked: Sequence[str]) -> str:
    index = next(
        (i for i, (old, new) in enumerate(zip(made_with, asked, strict=False)) if old != new),
        min(len(made_with), len(asked)),
    )
    start = max(0, index - 1)
    before = " ".join(made_with[start : index + 1]) or "(nothing)"
    now = " ".join(asked[start : index + 1]) or "(nothing)"
    return f"made with `{before}` where this run asks for `{now}`"


def why_stale(
    stamp: Stamp | None, fingerprint: Sequence[str], inputs_now: dict[str, str | None]
) -> str | None:
    """Why an existing output cannot count as this stage's, or None when it can."""
    if stamp is None:
        return "nothing records which command made it"
    if stamp.fingerprint != list(fingerprint):
        return _first_difference(stamp.fingerprint, list(fingerprint))
    for path, made_id in inputs_now.items():
        if stamp.inputs.get(path) != made_id:
            return f"its input {path} was made again since"
    return None
