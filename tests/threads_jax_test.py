"""The JAX train command decides its threads (libs/compute_threads) and hands them to XLA before its CPU
backend starts: printed, overridable with --threads, one thread also turning off Eigen's own pool."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.jax_openpi import train
from libs.compute_threads import ALL_VARIABLES, XLA_SINGLE_THREAD_FLAG


def test_jax_train_prints_its_threads_and_sets_xla_before_its_backend_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jax._src import xla_bridge

    for variable in ALL_VARIABLES:
        monkeypatch.setenv(variable, "")  # remembered, so that the test's values do not outlive it
        monkeypatch.delenv(variable)
    argv = ["--config", "so101_test", "--dataset", str(tmp_path / "none"), "--out", str(tmp_path / "run")]
    assert train.main([*argv, "--steps", "1", "--threads", "1"]) == 2  # the missing dataset, afterwards
    assert capsys.readouterr().out.startswith("threads: 1 per model (set by --threads; ")
    assert os.environ["NPROC"] == "1" and XLA_SINGLE_THREAD_FLAG in os.environ["XLA_FLAGS"]
    assert not xla_bridge._backends  # XLA has not read them yet: they take effect
    assert train.main([*argv, "--steps", "1"]) == 2
    decided = capsys.readouterr().out
    assert decided.startswith("threads: ") and "busy with other work; --threads N overrides)" in decided
    assert os.environ["NPROC"] == decided.split()[1]
