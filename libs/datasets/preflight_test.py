"""Preflight refuses a run that does not fit, on a real small tmpfs (we run as root in CI's container)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from libs.datasets.fast_loader import iterate_batches, probe_reader
from libs.datasets.preflight import (
    MIB,
    PreflightError,
    check_disk,
    main,
    mount_of,
    plan_disk,
    run_training_preflight,
)
from libs.datasets.synthetic import write_synthetic_dataset


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs (the tests run as root, as CI's container does)."""
    point = tmp_path / "small"
    point.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        pytest.fail("cannot mount a tmpfs here: run the preflight tests as root (CI's container is root)")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=False)


def test_mount_is_named_and_refusal_has_numbers(small_filesystem: Path) -> None:
    output = small_filesystem / "runs" / "act"  # does not exist yet: its nearest ancestor decides
    mount = mount_of(output)
    assert mount.mount_point == small_filesystem and mount.filesystem == "tmpfs"
    assert 3 * MIB < mount.total_bytes <= 4 * MIB
    with pytest.raises(PreflightError) as refused:
        check_disk(
            plan_disk(output, checkpoint_bytes=2 * MIB, total_steps=1000, save_every=100, keep_last=2),
            report=None,
        )
    message = str(refused.value)
    assert str(small_filesystem) in message and "tmpfs" in message
    assert "3 × 2.0 MiB" in message and "6.6 MiB" in message and "--keep-last" in message
    fits = check_disk(
        plan_disk(output, checkpoint_bytes=MIB // 2, total_steps=1000, save_every=500, keep_last=1),
        report=None,
    )
    assert fits.fits and fits.saves == 2 and fits.resident_checkpoints == 2
    assert main(["--out", str(output), "--checkpoint-mb", "2", "--steps", "1000", "--save-every", "100"]) == 2
    assert main(["--out", str(output), "--checkpoint-mb", "0.1", "--steps", "10", "--save-every", "5"]) == 0


def test_retention_rule() -> None:
    plan = plan_disk("/tmp", checkpoint_bytes=MIB, total_steps=1050, save_every=100, margin=0.0)
    assert plan.saves == 11 and plan.resident_checkpoints == 11
    plan = plan_disk("/tmp", checkpoint_bytes=MIB, total_steps=1050, save_every=100, keep_last=3, margin=0.0)
    assert plan.resident_checkpoints == 4 and plan.required_bytes == 4 * MIB
    with pytest.raises(PreflightError, match="keep-last"):
        plan_disk("/tmp", checkpoint_bytes=MIB, total_steps=10, save_every=5, keep_last=0)


def test_overlay_and_root_disk_warnings(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "1 0 0:1 / / rw - overlay overlay rw,lowerdir=/a\n"
        f"2 1 0:2 / {tmp_path / 'vol'} rw - ext4 /dev/sdb1 rw\n"
    )
    (tmp_path / "vol").mkdir()
    overlay = plan_disk("/opt/somewhere", MIB, 10, 5, mountinfo=mountinfo)
    assert overlay.mount.filesystem == "overlay" and "overlay" in overlay.warnings[0]
    volume = plan_disk(tmp_path / "vol" / "run", MIB, 10, 5, mountinfo=mountinfo)
    assert volume.mount.source == "/dev/sdb1" and volume.warnings == ()
    mountinfo.write_text("1 0 0:1 / / rw - ext4 /dev/vda rw\n")
    assert "root disk" in plan_disk("/opt/x", MIB, 10, 5, mountinfo=mountinfo).warnings[0]


def test_probe_recommends_fewest_workers_that_keep_up() -> None:
    def make_loader(workers: int) -> Iterator[np.ndarray]:
        delay = 0.004 / (1 + workers)  # more workers, faster batches

        def batches() -> Iterator[np.ndarray]:
            for _ in range(50):
                time.sleep(delay)
                yield np.zeros((4, 3))

        return batches()

    _, probe = run_training_preflight(
        "/tmp", 1, 10, 5, make_loader=make_loader, step=lambda batch: time.sleep(0.0025),
        worker_counts=(0, 1, 3), probe_batches=5, report=None,
    )  # fmt: skip
    assert probe is not None
    assert [timing.num_workers for timing in probe.timings] == [0, 1, 3]
    assert probe.timings[2].samples_per_s > probe.timings[0].samples_per_s
    assert probe.recommended_workers in (1, 3)
    assert "recommended num_workers" in probe.table()


def test_fast_loader_batches_cover_every_frame(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "ds", episodes=3, length=5)
    batches = list(iterate_batches(root, batch_size=4, num_workers=2, action_horizon=3, episodes_per_group=2))
    indices = np.concatenate([batch["index"] for batch in batches])
    assert sorted(indices.tolist()) == list(range(5 + 6 + 7))
    first = batches[0]
    assert first["action"].shape[1:] == (3, 6) and first["observation.images.top"].shape[1:] == (32, 48, 3)
    probe = probe_reader(root, (0, 2), batch_size=2, batches=2)
    assert len(probe.timings) == 2
