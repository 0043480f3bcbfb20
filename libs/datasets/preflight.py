"""Training preflight: refuse a run that cannot fit on its disk, and find a data-loader setting that keeps
the model busy — before step 0 rather than hours in.

Disk: the filesystem that really holds the output directory (the mount found in /proc/self/mountinfo for
its nearest existing ancestor) must have room for checkpoint size × the checkpoints alive at once under the
retention rule (plus one being written before the oldest is deleted) × a safety margin. The mount is named,
and an overlay (a container's writable layer) or the root disk gets a warning: both vanish or fill up with
everything else on the machine.

Throughput: ``probe_data_loader`` times batches from a loader built for several ``num_workers`` values and
one training step of the model, and recommends the fewest workers whose batches arrive faster than the
model consumes them. It takes factories, so each backend passes its own loader and step (torch DataLoader,
JAX pipeline); the CLI probes our stack-free reader.

The two train commands call ``run_training_preflight(...)`` (= ``check_disk``, which raises
``PreflightError`` with the numbers, + ``probe_data_loader``); on its own:

    ./pants run libs/datasets:preflight -- --out RUNS/act --checkpoint-mb 200 --steps 100000 \
        --save-every 10000 --keep-last 3 [--dataset DATA --workers 0,2,4]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.datasets.loader_probe import LoaderProbe as LoaderProbe  # re-exported: the trainers use it
from libs.datasets.loader_probe import LoaderTiming as LoaderTiming
from libs.datasets.loader_probe import PreflightError as PreflightError
from libs.datasets.loader_probe import probe_data_loader as probe_data_loader

MIB = 1024**2
#: Free space kept beyond the checkpoints: logs, metrics, evaluation videos, filesystem slack.
DEFAULT_MARGIN = 0.10
#: Filesystems that are a container's writable layer (lost with the container, share the host's root disk).
OVERLAY_FILESYSTEMS = ("overlay", "overlayfs", "aufs", "fuse-overlayfs")


@dataclass(frozen=True)
class Mount:
    mount_point: Path
    filesystem: str
    source: str
    free_bytes: int
    total_bytes: int

    def describe(self) -> str:
        return (
            f"{self.mount_point} ({self.filesystem} from {self.source}, {_mib(self.free_bytes)} free of "
            f"{_mib(self.total_bytes)})"
        )


def _mib(value: float) -> str:
    if value >= 1024**3:
        return f"{value / 1024**3:.1f} GiB"
    return f"{value / MIB:.1f} MiB"


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path.resolve()


def _unescape(field_text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    return field_text.encode().decode("unicode_escape")


def mount_of(path: str | Path, mountinfo: str | Path = "/proc/self/mountinfo") -> Mount:
    """The mount that holds ``path`` (or would, once created) with its free space."""
    target = _existing_ancestor(Path(path))
    best: tuple[Path, str, str] | None = None
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        left, _, right = line.partition(" - ")
        parts, tail = left.split(), right.split()
        if len(parts) < 5 or len(tail) < 2:
            continue
        point = Path(_unescape(parts[4]))
        if (target == point or point in target.parents) and (
            best is None or len(str(point)) >= len(str(best[0]))
        ):
            best = (point, tail[0], tail[1])
    point, filesystem, source = best or (Path("/"), "unknown", "unknown")
    stats = os.statvfs(target)
    return Mount(point, filesystem, source, stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize)


@dataclass(frozen=True)
class DiskPlan:
    mount: Mount
    output_dir: Path
    checkpoint_bytes: int
    saves: int
    resident_checkpoints: int
    required_bytes: int
    warnings: tuple[str, ...] = ()
    #: What the plan assumed, for the refusal to name: retention (None: all kept), other output, margin.
    keep_last: int | None = None
    extra_bytes: int = 0
    margin: float = DEFAULT_MARGIN

    @property
    def fits(self) -> bool:
        return self.required_bytes <= self.mount.free_bytes

    def summary(self) -> str:
        return (
            f"output {self.output_dir} is on {self.mount.describe()}; "
            f"the run needs {_mib(self.required_bytes)}: "
            f"{self.resident_checkpoints} checkpoint(s) alive at once × {_mib(self.checkpoint_bytes)} "
            f"({self.saves} saves in total)"
        )


def plan_disk(
    output_dir: str | Path,
    checkpoint_bytes: int,
    total_steps: int,
    save_every: int,
    keep_last: int | None = None,
    extra_bytes: int = 0,
    margin: float = DEFAULT_MARGIN,
    mountinfo: str | Path = "/proc/self/mountinfo",
) -> DiskPlan:
    """How much the run will write and whether it fits (does not raise; see ``check_disk``).

    Saves happen every ``save_every`` steps and at the last step. With ``keep_last`` = K the newest K survive,
    but a new checkpoint is complete before the oldest is removed, so K + 1 exist at the peak."""
    if checkpoint_bytes <= 0 or total_steps <= 0 or save_every <= 0:
        raise PreflightError(
            f"checkpoint size ({checkpoint_bytes} B), steps ({total_steps}) and save interval ({save_every}) "
            "must be positive"
        )
    if keep_last is not None and keep_last < 1:
        raise PreflightError(f"--keep-last {keep_last} must be >= 1 (or omitted to keep every checkpoint)")
    saves = total_steps // save_every + (0 if total_steps % save_every == 0 else 1)
    resident = saves if keep_last is None else min(saves, keep_last + 1)
    required = math.ceil(resident * checkpoint_bytes * (1 + margin)) + int(extra_bytes)
    mount = mount_of(output_dir, mountinfo)
    warnings = []
    if mount.filesystem in OVERLAY_FILESYSTEMS:
        warnings.append(
            f"{mount.mount_point} is an {mount.filesystem} filesystem (a container's writable layer): "
            "checkpoints are lost with the container and fill the host disk; write to a mounted volume"
        )
    elif mount.mount_point == Path("/"):
        warnings.append(
            f"{output_dir} is on the root disk ({mount.source}): a full root disk stops the whole machine; "
            "prefer a data volume"
        )
    return DiskPlan(
        mount,
        Path(output_dir),
        int(checkpoint_bytes),
        saves,
        resident,
        required,
        tuple(warnings),
        keep_last,
        int(extra_bytes),
        margin,
    )


def check_disk(plan: DiskPlan, report: Callable[[str], None] | None = print) -> DiskPlan:
    """Prints ``plan_disk``'s plan and its warnings; raises ``PreflightError`` with the numbers when the run
    cannot fit."""
    if report is not None:
        report(f"preflight: {plan.summary()}")
        for warning in plan.warnings:
            report(f"preflight warning: {warning}")
    if not plan.fits:
        retention = (
            "every checkpoint is kept"
            if plan.keep_last is None
            else f"--keep-last {plan.keep_last} (+1 while saving)"
        )
        raise PreflightError(
            f"not enough disk for {plan.output_dir}: {plan.mount.mount_point} ({plan.mount.filesystem}) has "
            f"{_mib(plan.mount.free_bytes)} free but the run needs {_mib(plan.required_bytes)} = "
            f"{plan.resident_checkpoints} × {_mib(plan.checkpoint_bytes)} checkpoints ({plan.saves} saves, "
            f"{retention}) + {int(plan.margin * 100)}% margin"
            + (f" + {_mib(plan.extra_bytes)} other output" if plan.extra_bytes else "")
            + ": free space, save less often, keep fewer checkpoints (--keep-last), or write elsewhere"
        )
    return plan


def checkpoint_bytes_estimate(
    num_parameters: int, bytes_per_parameter: int = 4, optimizer_slots: int = 2
) -> int:
    """Weights plus optimizer state (Adam keeps two moments per parameter) in one checkpoint."""
    return int(num_parameters * bytes_per_parameter * (1 + optimizer_slots))


def directory_bytes(path: str | Path) -> int:
    """Size on disk of an existing checkpoint directory (to size the next ones exactly)."""
    return sum(item.stat().st_size for item in Path(path).rglob("*") if item.is_file())


def run_training_preflight(
    output_dir: str | Path,
    checkpoint_bytes: int,
    total_steps: int,
    save_every: int,
    keep_last: int | None = None,
    make_loader: Callable[[int], Iterable[Any]] | None = None,
    step: Callable[[Any], Any] | None = None,
    worker_counts: Sequence[int] = (0, 2, 4),
    probe_batches: int = 10,
    report: Callable[[str], None] | None = print,
) -> tuple[DiskPlan, LoaderProbe | None]:
    """What a train command runs before step 0: the disk check (raises ``PreflightError`` when the run
    cannot fit) and, given a loader factory, the throughput probe with its recommendation."""
    plan = check_disk(plan_disk(output_dir, checkpoint_bytes, total_steps, save_every, keep_last), report)
    probe = None
    if make_loader is not None:
        probe = probe_data_loader(make_loader, worker_counts, batches=probe_batches, step=step)
        if report is not None:
            report("preflight data loader:\n" + probe.table())
    return plan, probe


# ------------------------------------------------------------------------------------------------ CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the run's output directory")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--checkpoint-mb", type=float, help="size of one checkpoint in MiB")
    size.add_argument("--checkpoint-dir", type=Path, help="an existing checkpoint to measure")
    size.add_argument("--parameters", type=int, help="model parameters (weights + Adam state, float32)")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--save-every", type=int, required=True)
    parser.add_argument("--keep-last", type=int, default=None, help="retention: newest N kept (default: all)")
    parser.add_argument("--extra-mb", type=float, default=0.0, help="other output (logs, videos) in MiB")
    parser.add_argument("--dataset", type=Path, default=None, help="also probe loading this dataset")
    parser.add_argument("--workers", default="0,2,4", help="num_workers values to probe")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    try:
        if args.checkpoint_dir:
            checkpoint = directory_bytes(args.checkpoint_dir)
        elif args.parameters:
            checkpoint = checkpoint_bytes_estimate(args.parameters)
        else:
            checkpoint = int(args.checkpoint_mb * MIB)
        check_disk(
            plan_disk(
                args.out, checkpoint, args.steps, args.save_every, args.keep_last, int(args.extra_mb * MIB)
            )
        )
        if args.dataset:
            from libs.datasets.fast_loader import probe_reader

            workers = [int(value) for value in args.workers.split(",")]
            print(probe_reader(args.dataset, workers, args.batch_size).table())
    except (PreflightError, ValueError) as error:
        print(f"preflight refused: {error}", file=sys.stderr)
        return 2
    print("preflight: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
