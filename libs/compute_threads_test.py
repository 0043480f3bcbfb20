"""The thread decision every model-running command takes: cores given, busy cores, models, overrides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from libs import compute_threads
from libs.compute_threads import (
    ThreadChoice,
    ThreadsError,
    apply_threads,
    busy_cores,
    busy_cores_between,
    cgroup_cpu_quota,
    choose_threads,
    cores_given,
    threads_per_model,
)


@pytest.fixture
def clean_thread_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread variable from the caller's shell; the test's own settings do not outlive it."""
    for variable in compute_threads.ALL_VARIABLES:
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)


@pytest.mark.parametrize(
    ("cores", "busy", "models", "threads"),
    [
        (2, 0, 1, 2),  # alone on two cores: both
        (2, 1, 1, 1),  # the case: a training on the other core leaves one
        (2, 2, 1, 1),  # every core busy: still one thread, never zero
        (8, 0, 4, 2),  # four Ray workers share eight cores
        (8, 2, 4, 1),  # ... six free among four: one each (never more threads than cores)
        (2, 0, 2, 1),
        (16, 0, 3, 5),
    ],
)
def test_threads_per_model_shares_the_free_cores(cores: int, busy: int, models: int, threads: int) -> None:
    assert threads_per_model(cores, busy, models) == threads


def test_cores_given_is_the_affinity_capped_by_the_cgroup_quota(tmp_path: Path) -> None:
    assert cores_given({0, 1, 2, 3}, cgroup_root=tmp_path) == 4  # no quota file: the affinity
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 cores: two threads may run
    assert cgroup_cpu_quota(tmp_path) == 1.5
    assert cores_given({0, 1, 2, 3}, cgroup_root=tmp_path) == 2
    assert cores_given({3}, cgroup_root=tmp_path) == 1  # the affinity is the tighter cap
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    assert cores_given(range(6), cgroup_root=tmp_path) == 6
    assert cores_given(range(6), quota=0.5, cgroup_root=tmp_path) == 1


def test_cgroup_v1_quota_is_read_too(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    assert cgroup_cpu_quota(tmp_path) == 3.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    assert cgroup_cpu_quota(tmp_path) is None


def _stat(*cores: tuple[int, int]) -> str:
    """A /proc/stat with one line per core: (busy jiffies, idle jiffies)."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    for number, (busy, idle) in enumerate(cores):
        lines.append(f"cpu{number} {busy} 0 0 {idle} 0 0 0 0 0 0")
    return "\n".join([*lines, "intr 0"])


def test_busy_cores_counts_only_the_given_cores_and_rounds_the_sum() -> None:
    before = _stat((0, 0), (0, 0), (0, 0))
    after = _stat((100, 0), (5, 95), (100, 0))  # cores 0 and 2 busy, core 1 idle
    assert busy_cores_between(before, after, [0, 1, 2]) == 2
    assert busy_cores_between(before, after, [0, 1]) == 1
    assert busy_cores_between(before, after, [1]) == 0
    hopping = _stat((50, 50), (50, 50), (0, 100))  # one process hopping between cores 0 and 1
    assert busy_cores_between(before, hopping, [0, 1, 2]) == 1
    assert busy_cores_between(before, after, [7]) == 0  # a core /proc/stat does not list


def test_a_burner_pinned_to_a_given_core_is_seen_busy() -> None:
    """The reading the commands take (0.2 s of /proc/stat) sees a process spinning on a core; the load
    average, a minute-long average of the whole machine, would not yet."""
    core = max(os.sched_getaffinity(0))
    burner = subprocess.Popen(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{core}}})\nwhile 1: pass"]
    )
    try:
        assert busy_cores([core], window_s=0.5) == 1
    finally:
        burner.kill()
        burner.wait()


def test_choose_threads_takes_the_override_then_the_users_omp_variable(
    clean_thread_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert choose_threads(override=3) == ThreadChoice(3, cores_given(), 0, 1, "--threads")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert choose_threads().threads == 5 and choose_threads().source == "OMP_NUM_THREADS"
    assert choose_threads(override=2).threads == 2  # the flag wins over the variable
    with pytest.raises(ThreadsError, match="--threads 0: give at least 1"):
        choose_threads(override=0)


def test_a_count_the_lab_set_for_a_child_is_not_taken_for_the_users(
    clean_thread_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """quickstart's train child decides its own threads instead of inheriting quickstart's as an override."""
    apply_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "1"
    choice = choose_threads(models=1, sample_busy=False)
    assert choice.source is None
    assert choice.threads == threads_per_model(cores_given(), 0, 1)


def test_apply_threads_sets_torch_and_xla_variables_keeping_the_users_xla_flags(
    clean_thread_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    apply_threads(1)
    assert [os.environ[variable] for variable in compute_threads.THREAD_VARIABLES] == ["1", "1", "1"]
    assert os.environ["NPROC"] == "1"
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false"
    apply_threads(3)
    assert os.environ["NPROC"] == os.environ["MKL_NUM_THREADS"] == "3"
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"  # Eigen multi-threaded again


def test_the_printed_line_says_the_count_why_and_the_override() -> None:
    assert ThreadChoice(1, 2, 1, 1).line() == (
        "threads: 1 per model (2 cores given, 1 busy with other work; --threads N overrides)"
    )
    assert ThreadChoice(2, 8, 0, 4).line() == (
        "threads: 2 per model, 4 models (8 cores given, 0 busy with other work; --threads N overrides)"
    )
    assert ThreadChoice(3, 2, 0, 1, "--threads").line() == (
        "threads: 3 per model (set by --threads; 2 cores given)"
    )
