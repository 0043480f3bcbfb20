"""Fault injection: a checkpoint directory removed while the sweep runs. The sweep stops in one line naming
it, the episodes already stored are kept, and once the directory is back the same command finishes the
sweep without running a stored episode again."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from backends.jax_openpi import train as train_lib
from backends.jax_openpi.compute_norm_stats import main as compute_norm_stats_main
from backends.jax_openpi.config import get_config
from backends.jax_openpi.fixtures import write_tiny_dataset
from libs.policy_api.card import CARD_FILE, CheckpointCard
from libs.sim.scene_config import SceneConfig
from services.eval import fixtures as processes

# The tiny model's episodes end in milliseconds: enough of them that the removal lands mid-checkpoint.
EPISODES = 20


def stored(out: Path) -> list[tuple]:
    return processes.stored(out, columns="checkpoint_id, seed, outcome")


def test_a_checkpoint_removed_mid_sweep_is_one_line_and_resumes(tmp_path: Path) -> None:
    dataset = write_tiny_dataset(tmp_path / "data", episodes=2, length=10)
    run = tmp_path / "run"
    assert (
        compute_norm_stats_main(["--config", "so101_test", "--dataset", str(dataset), "--out", str(run)]) == 0
    )
    config = dataclasses.replace(get_config("so101_test"), save_interval=1, keep_last=5)
    train_lib.train(config, dataset, run, steps=2, progress=False)
    second = run / "checkpoints" / "000002"
    assert second.is_dir()
    scene = SceneConfig().with_image_size(24, 32).to_dict()
    for checkpoint in (run / "checkpoints").glob("0*"):  # the tiny fixture's scene lacks camera poses
        card = CheckpointCard.read(checkpoint)
        assert card is not None, f"training wrote no {CARD_FILE} in {checkpoint}"
        card.with_fields(scene=scene).write(checkpoint)  # the card is what evaluation reads the scene from

    out = tmp_path / "out"
    # The tiny dataset is synthetic, not the env's data: its statistics differ from the env's on purpose.
    command = processes.sweep_command(
        out,
        "--serial",
        "--max-steps",
        "20",
        "--allow-input-drift",
        policy=f"jax_openpi:{run}",
        episodes=EPISODES,
    )
    environment = processes.subprocess_environment()
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    processes.wait_for_rows(out, process, timeout_s=900)
    aside = tmp_path / "aside"
    with processes.held_still(process.pid):
        assert all(checkpoint == "000001" for checkpoint, _, _ in stored(out))
        second.rename(aside)  # removed while the sweep runs the first checkpoint
    stdout, stderr = process.communicate(timeout=900)
    kept = stored(out)
    assert process.returncode == 2, stderr[-2000:]
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "000002" in line and "Traceback" not in stderr, stderr[-2000:]
    assert kept and all(checkpoint == "000001" for checkpoint, _, _ in kept)

    aside.rename(second)  # back again: the same command resumes
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"{2 * EPISODES - len(kept)} episodes, {len(kept)} already done" in finished.stdout
    rows = stored(out)
    assert len(rows) == 2 * EPISODES and set(kept) <= set(rows)
