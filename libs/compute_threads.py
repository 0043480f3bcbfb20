"""How many CPU threads each model of a command runs: decided from the cores the process was given and what
else runs on them, printed, and overridable with ``--threads N``.

Measured (issue 32): a Diffusion ``--serial`` sweep beside a training on the other core ran at 9.5–75 s per
episode with torch's default (two threads, one of them spinning against the training), and at ~1.1 s with
one thread. So nothing is left to the stack's defaults:

- **cores given** = the process's CPU affinity (``taskset``, a scheduler's cpuset), capped by the cgroup's CPU
  quota (``cpu.max``, or v1's ``cpu.cfs_quota_us``) when there is one;
- **busy** = how many of those cores other work keeps busy, from ``/proc/stat`` over a short window (the sum
  of the cores' busy fractions, rounded: a process hopping between cores counts once). The load average was
  measured not to do: it is a minute-long average of the whole machine, so a burner started a second ago
  does not show and one stopped a minute ago still does;
- **models** = how many model-running processes the command itself starts on those cores (Ray workers,
  lockstep envs share one model and count once);
- threads per model = the free cores shared among the models, at least 1.

``apply_threads`` sets the count for torch (``torch.set_num_threads`` when torch is already imported, the
OpenMP/MKL/OpenBLAS variables for what imports it later and for child processes) and for XLA (``NPROC`` sizes
its CPU pool; one thread also turns off Eigen's multi-threading in ``XLA_FLAGS``) — before JAX is imported.
An ``OMP_NUM_THREADS`` the user set counts as their override, as ``--threads`` does.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.errors import LabError

#: the variables torch's intra-op pool and the BLAS libraries read when they start
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: XLA's CPU client sizes its thread pool from this (measured: 9, 11 and 19 threads for 1, 2 and 6)
XLA_POOL_VARIABLE = "NPROC"
XLA_SINGLE_THREAD_FLAG = "--xla_cpu_multi_thread_eigen=false"
#: what this lab last set OMP_NUM_THREADS to: a value it set itself (a parent command's) is not the user's
DECIDED_VARIABLE = "SO101LAB_THREADS"
#: every variable ``apply_threads`` sets
ALL_VARIABLES = (*THREAD_VARIABLES, XLA_POOL_VARIABLE, "XLA_FLAGS", DECIDED_VARIABLE)
#: seconds of /proc/stat sampled for busy cores: long enough to see a busy core, short beside any command
BUSY_WINDOW_S = 0.2
#: help of every command's --threads flag
THREADS_HELP = (
    "CPU threads per model (default: decided from the cores this process may use, those busy with other "
    "work and the models it runs; printed at start)"
)


class ThreadsError(LabError, ValueError):
    """A --threads the command cannot use."""


@dataclass(frozen=True)
class ThreadChoice:
    """The threads each model runs, and why."""

    threads: int
    cores: int
    busy: int
    models: int
    #: where an override came from ("--threads", "OMP_NUM_THREADS"), None when decided
    source: str | None = None
    #: cores the command keeps for its own non-model work (the policy server's event loop)
    reserved: int = 0
    reserved_for: str = ""

    def line(self) -> str:
        """The line a command prints: ``threads: 1 per model (2 cores given, 1 busy with other work; …)``."""
        per = "per model" if self.models == 1 else f"per model, {self.models} models"
        if self.source == "--threads":
            return f"threads: {self.threads} {per} (set by --threads; {self.cores} cores given)"
        if self.source is not None:
            why = f"set by {self.source}; {self.cores} cores given"
        else:
            why = f"{self.cores} cores given, {self.busy} busy with other work"
            if self.reserved:
                why += f", {self.reserved} kept for {self.reserved_for or 'other work of this command'}"
        return f"threads: {self.threads} {per} ({why}; --threads N overrides)"


def threads_per_model(cores: int, busy: int, models: int = 1) -> int:
    """The free cores (given, less those busy) shared among the models, at least one thread each."""
    free = max(0, cores - busy)
    return max(1, free // max(1, models))


def cores_given(
    affinity: Iterable[int] | None = None,
    quota: float | None = None,
    *,
    cgroup_root: Path = Path("/sys/fs/cgroup"),
) -> int:
    """The process's CPU affinity, capped by the cgroup's CPU quota (in cores, rounded up) when it has one."""
    count = len(set(affinity if affinity is not None else os.sched_getaffinity(0)))
    quota = quota if quota is not None else cgroup_cpu_quota(cgroup_root)
    if quota is not None and quota > 0:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def cgroup_cpu_quota(cgroup_root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota in cores (``cpu.max``'s quota / period; v1's ``cfs_quota_us / cfs_period_us``), None when
    unlimited or unreadable."""
    try:
        text = (cgroup_root / "cpu.max").read_text().split()
        if len(text) == 2 and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _core_times(stat_text: str) -> dict[int, tuple[int, int]]:
    """``/proc/stat``'s per-core (idle, total) jiffies; idle counts iowait."""
    times = {}
    for line in stat_text.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            values = [int(value) for value in fields[:8]]
            times[int(name[3:])] = (values[3] + values[4], sum(values))
    return times


def busy_cores_between(before: str, after: str, cores: Iterable[int]) -> int:
    """How many of ``cores`` were busy between two ``/proc/stat`` readings: the sum of their busy fractions,
    rounded (a process hopping between two cores counts once)."""
    first, second = _core_times(before), _core_times(after)
    busy = 0.0
    for core in cores:
        if core not in first or core not in second:
            continue
        idle = second[core][0] - first[core][0]
        total = second[core][1] - first[core][1]
        if total > 0:
            busy += min(1.0, max(0.0, 1.0 - idle / total))
    return int(busy + 0.5)


def busy_cores(cores: Iterable[int] | None = None, window_s: float = BUSY_WINDOW_S) -> int:
    """How many of ``cores`` (default: this process's) other work keeps busy, sampled over ``window_s``
    while this process sleeps; 0 where ``/proc/stat`` cannot be read."""
    wanted = sorted(cores if cores is not None else os.sched_getaffinity(0))
    stat = Path("/proc/stat")
    try:
        before = stat.read_text()
        time.sleep(window_s)
        after = stat.read_text()
    except OSError:
        return 0
    return busy_cores_between(before, after, wanted)


def user_thread_setting() -> int | None:
    """An ``OMP_NUM_THREADS`` the user set (not one this lab set for a child process), else None."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not value or value == os.environ.get(DECIDED_VARIABLE):
        return None
    try:
        return max(1, int(value))
    except ValueError:
        return None


def choose_threads(
    models: int = 1,
    override: int | None = None,
    *,
    sample_busy: bool = True,
    reserved: int = 0,
    reserved_for: str = "",
) -> ThreadChoice:
    """The threads per model of a command that runs ``models`` models on this process's cores and keeps
    ``reserved`` of them for its own other work: ``override`` (``--threads``), else the user's
    ``OMP_NUM_THREADS``, else decided."""
    if override is not None and override < 1:
        raise ThreadsError(f"--threads {override}: give at least 1 (or leave it out to let the lab decide)")
    cores = cores_given()
    if override is not None:
        return ThreadChoice(override, cores, 0, models, "--threads")
    from_environment = user_thread_setting()
    if from_environment is not None:
        return ThreadChoice(from_environment, cores, 0, models, "OMP_NUM_THREADS")
    affinity = os.sched_getaffinity(0)
    busy = min(busy_cores(affinity) if sample_busy else 0, len(affinity))
    free_given = min(cores, len(affinity) - busy)  # a quota below the affinity caps what is free
    threads = threads_per_model(free_given - reserved, 0, models)
    return ThreadChoice(threads, cores, busy, models, None, reserved, reserved_for)


def apply_threads(threads: int, *, decided: bool = True) -> None:
    """Sets ``threads`` for torch (now if imported, and for what imports it later, children included) and for
    XLA's CPU pool (read when JAX starts its backend). A ``decided`` count is marked as the lab's, so a child
    command decides its own instead of taking it for the user's."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    if decided:
        os.environ[DECIDED_VARIABLE] = str(threads)
    else:
        os.environ.pop(DECIDED_VARIABLE, None)
    os.environ[XLA_POOL_VARIABLE] = str(threads)
    flags = [flag for flag in os.environ.get("XLA_FLAGS", "").split() if flag != XLA_SINGLE_THREAD_FLAG]
    if threads == 1:
        flags.append(XLA_SINGLE_THREAD_FLAG)
    if flags:
        os.environ["XLA_FLAGS"] = " ".join(flags)
    else:
        os.environ.pop("XLA_FLAGS", None)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(threads)


def decide_and_apply(models: int = 1, override: int | None = None, **options: Any) -> ThreadChoice:
    """``choose_threads`` (``options``: its keywords) then ``apply_threads``, printing the choice's line:
    what every command calls once, before its model's stack starts."""
    choice = choose_threads(models, override, **options)
    apply_threads(choice.threads, decided=choice.source != "OMP_NUM_THREADS")
    print(choice.line(), flush=True)
    return choice


def add_threads_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--threads N`` on a command whose flags are not drawn from a config dataclass."""
    parser.add_argument("--threads", type=int, default=None, metavar="N", help=THREADS_HELP)


def inherited_threads(default: int = 1) -> int:
    """The count a parent command applied (its ``OMP_NUM_THREADS``, passed on to a Ray worker), else
    ``default``."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return default
