"""The learning-curve driver: its plan, its resumability and its outputs (the cells' training is the
users' own commands, tested where they live)."""

from __future__ import annotations

import json
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from benchmarks import learning_curves
from benchmarks.learning_curves import RECIPES, cell_stages, main, wilson_interval
from services.training.runs import begin, finish, read_runs_file


def test_dry_run_prints_every_stage_as_a_pants_command(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "pants.toml").write_text("")  # the driver runs from a checkout's root
    monkeypatch.chdir(tmp_path)
    argv = ["--out", str(tmp_path), "--policies", "act-state,jax-state", "--demos", "25,50", "--dry-run"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    # One pool for both state recipes; per cell: subset, train, evaluate.
    assert printed.count("libs/datasets:record") == 1 and "--environment-state" in printed
    assert printed.count("libs/datasets:convert -- filter") == 4
    assert printed.count("backends/torch_lerobot:train") == 2
    assert printed.count("backends/jax_openpi:train") == 2
    assert "--episodes " + ",".join(str(index) for index in range(25)) + "\n" in printed
    assert printed.count("services/eval:sweep-torch_lerobot -- --policy torch_lerobot:") == 2


def test_unknown_recipe_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path), "--policies", "act-stat", "--dry-run"]) == 2
    assert "unknown policy recipe 'act-stat'" in capsys.readouterr().err


def test_a_finished_cell_is_not_redone(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "pants.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    ran: list[str] = []

    def record_names(stages, *_):
        ran.extend(stage.name for stage in stages)
        return []

    monkeypatch.setattr(learning_curves, "run_stages", record_names)
    (tmp_path / "data" / "state-pool" / "meta").mkdir(parents=True)
    cell = {
        "policy": "act-state", "demos": 25, "episodes": 100, "successes": 91, "success_rate": 0.91,
        "wilson95": list(wilson_interval(91, 100)), "outcomes": {"success": 91, "timeout": 9},
        "train_seconds": 540.0, "train_args": list(RECIPES["act-state"].train_args),
        "record_args": list(learning_curves.POOLS["state"].record_args),
    }  # fmt: skip
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "act-state-25.json").write_text(json.dumps(cell))
    assert main(["--out", str(tmp_path), "--policies", "act-state", "--demos", "25"]) == 0
    assert not [name for name in ran if name.endswith("-25")]
    table = (tmp_path / "learning_curves.md").read_text()
    assert table.count("| act-state | 25 | 91/100 (91%) | 84–95% |") == 1
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000


def test_wilson_interval_matches_the_closed_form() -> None:
    low, high = wilson_interval(90, 100)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_cell_stages_train_into_their_run_and_evaluate_its_last_checkpoint(tmp_path: Path) -> None:
    subset, train, evaluate = cell_stages(tmp_path, RECIPES["diffusion-state"], 50, eval_seeds=100, workers=2)
    assert train.output == tmp_path / "runs" / "diffusion-state-50" and train.resumes
    assert train.inputs == (subset.output,) and evaluate.inputs == (train.output,)
    assert f"torch_lerobot:{train.done_marker}" in evaluate.argv
    assert evaluate.argv[-2:] == ("--workers", "2") and "100" in evaluate.argv


def test_an_interrupted_cell_continues_its_training(tmp_path: Path) -> None:
    # The JAX trainer resumes from its last checkpoint in --out by itself, LeRobot's with --resume (same
    # batches); the stamp's fingerprint is the command without it, as before the flag existed.
    for recipe, flag in (("jax-state", ()), ("jax-vision", ()), ("act-state", ("--resume",))):
        _, train, _ = cell_stages(tmp_path, RECIPES[recipe], 25, eval_seeds=100, workers=None)
        assert train.resumes, recipe
        assert train.argv == (*train.fingerprint, *flag), recipe


def test_a_pool_recorded_for_fewer_demos_is_recorded_again_and_the_old_one_kept(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    (tmp_path / "pants.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    pools_seen: list[bool] = []

    def note_the_pool(stages, *_):
        if stages and stages[0].name == "record-vision":
            pools_seen.append(stages[0].done_marker.exists())
        raise learning_curves.QuickstartError("stop after the pool stage")

    monkeypatch.setattr(learning_curves, "run_stages", note_the_pool)
    meta = tmp_path / "data" / "vision-pool" / "meta"
    meta.mkdir(parents=True)
    header = {"codebase_version": "v3.0", "total_episodes": 100}
    (meta / "info.json").write_text(json.dumps(header))
    assert main(["--out", str(tmp_path), "--policies", "act-vision", "--demos", "100,200"]) == 2
    # The 100-demo pool cannot serve the 200-demo cell: its record stage must run, the old pool kept.
    assert pools_seen == [False]
    kept = tmp_path / "data" / "vision-pool.100-demos-1" / "meta" / "info.json"
    assert json.loads(kept.read_text()) == header
    assert "the vision pool has 100 demonstrations and this grid needs 200" in capsys.readouterr().out


def test_a_pool_large_enough_is_kept_as_it_is(tmp_path: Path, monkeypatch) -> None:
    meta = tmp_path / "data" / "vision-pool" / "meta"
    meta.mkdir(parents=True)
    (meta / "info.json").write_text(json.dumps({"codebase_version": "v3.0", "total_episodes": 200}))
    assert learning_curves.set_aside_short_pool(tmp_path, learning_curves.POOLS["vision"], 50) is None
    assert (meta / "info.json").exists()


def test_a_cell_stored_with_another_recipe_is_set_aside_and_redone(tmp_path: Path) -> None:
    recipe = RECIPES["act-state"]
    cell_file = tmp_path / "act-state-25.json"
    cell = {"train_args": list(recipe.train_args), "record_args": ["--environment-state", "--no-cameras",
            "--noise", "2.0"], "episodes": 100}  # fmt: skip
    cell_file.write_text(json.dumps(cell))
    assert learning_curves.why_cell_is_stale(cell_file, recipe, 100) is None
    assert "evaluated on 100 seeds, not 50" in learning_curves.why_cell_is_stale(cell_file, recipe, 50)
    cell_file.write_text(json.dumps({**cell, "train_args": ["--steps", "2000"]}))
    assert "the recipe now says" in learning_curves.why_cell_is_stale(cell_file, recipe, 100)


def test_the_pool_is_reused_whatever_count_it_was_recorded_for(tmp_path: Path) -> None:
    # The count is set_aside_short_pool's to judge; the stamp covers how the pool was recorded.
    small = learning_curves.pool_stage(tmp_path, learning_curves.POOLS["vision"], 50)
    large = learning_curves.pool_stage(tmp_path, learning_curves.POOLS["vision"], 200)
    assert small.fingerprint == large.fingerprint and "--episodes" not in small.fingerprint
    assert "--image-size" in small.fingerprint


def _finished_cell(out: Path, recipe_name: str, demos: int) -> None:
    recipe = RECIPES[recipe_name]
    cell = {"train_args": list(recipe.train_args), "episodes": 100,
            "record_args": list(learning_curves.POOLS[recipe.pool].record_args)}  # fmt: skip
    (out / "cells").mkdir(exist_ok=True)
    (out / "cells" / f"{recipe_name}-{demos}.json").write_text(json.dumps(cell))


def test_address_sends_the_unfinished_cells_training_to_one_runner_per_resolve(
    tmp_path: Path, monkeypatch
) -> None:
    subsets: list[str] = []
    commands: list[list[str]] = []
    monkeypatch.setattr(
        learning_curves, "run_stages", lambda stages, *_: subsets.extend(s.name for s in stages)
    )
    monkeypatch.setattr(
        learning_curves.subprocess,
        "run",
        lambda command, **_: commands.append(command) or CompletedProcess(command, 0),
    )
    _finished_cell(tmp_path, "act-state", 25)
    args = learning_curves.build_parser().parse_args(["--address", "head:6379", "--workers", "4"])
    cells = [(RECIPES[name], demos) for name in ("act-state", "jax-state") for demos in (25, 50)]
    learning_curves.train_cells_on_ray(tmp_path, cells, args, tmp_path, "./pants")
    assert subsets == ["subset-state-50", "subset-state-25", "subset-state-50"]  # the finished cell's: none
    assert [command[3] for command in commands] == [
        "services/training:train-runs-torch_lerobot",
        "services/training:train-runs-jax_openpi",
    ]
    assert commands[0][-4:] == ["--address", "head:6379", "--workers", "4"]
    torch_runs = read_runs_file(tmp_path / "train_runs-torch_lerobot.json")
    jax_runs = read_runs_file(tmp_path / "train_runs-jax_openpi.json")
    assert [run.name for run in torch_runs] == ["act-state-50"]
    assert [run.name for run in jax_runs] == ["jax-state-25", "jax-state-50"]
    _, train, evaluate = cell_stages(tmp_path, RECIPES["act-state"], 50, 100, 4, "head:6379")
    # the train stage's own command, folder, marker and stamp; the recipe's one thread reserved
    assert torch_runs[0].argv == train.argv and torch_runs[0].fingerprint == train.fingerprint
    assert torch_runs[0].done_marker == train.done_marker and torch_runs[0].inputs == train.inputs
    assert torch_runs[0].threads == 1 and not torch_runs[0].gpu
    assert evaluate.argv[-2:] == ("--ray-address", "head:6379")  # evaluated on the same cluster


def test_a_runner_that_fails_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(learning_curves, "run_stages", lambda *_: [])
    monkeypatch.setattr(learning_curves.subprocess, "run", lambda command, **_: CompletedProcess(command, 2))
    args = learning_curves.build_parser().parse_args(["--address", "local"])
    with pytest.raises(learning_curves.QuickstartError, match="rerun the same command"):
        learning_curves.train_cells_on_ray(tmp_path, [(RECIPES["act-state"], 25)], args, tmp_path, "./pants")


def test_a_cell_trained_on_ray_is_skipped_by_its_train_stage(tmp_path: Path, capsys) -> None:
    # The runner stamps a finished run as run_stages would: the cell's own train stage then does not run
    # (here its command would fail), and the cell reports the runner's training time.
    recipe = RECIPES["act-state"]
    _, train, _ = cell_stages(tmp_path, recipe, 25, 100, None, "local")
    run = learning_curves.training_run(recipe, train)
    begin(run)
    run.done_marker.mkdir(parents=True)
    finish(run, {"exit_code": 0, "seconds": 540.0})
    assert learning_curves.run_stages([train], tmp_path, "false") == [(train.name, 0.0, "skipped")]
    assert "already done" in capsys.readouterr().out
    assert learning_curves.read_record(train.output)["seconds"] == 540.0


def test_dry_run_with_an_address_prints_the_runners(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "pants.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    argv = ["--out", str(tmp_path), "--policies", "act-state,jax-state", "--demos", "25", "--dry-run"]
    assert main([*argv, "--address", "head:6379"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("run services/training:train-runs-") == 2
    assert printed.count("--ray-address head:6379") == 2  # both cells' sweeps


def test_training_seeds_are_cells_of_the_grid(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "pants.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    argv = ["--out", str(tmp_path), "--policies", "act-state,jax-state", "--demos", "25", "--dry-run"]
    assert main([*argv, "--train-seeds", "2000,1000"]) == 0
    printed = capsys.readouterr().out
    # one pool and one subset for all; a run and a sweep per (policy, seed)
    assert printed.count("libs/datasets:record") == 1 and printed.count("-- filter") == 4
    for policy in ("act-state", "jax-state"):
        for seed in (1000, 2000):
            assert printed.count(f"runs/{policy}-seed{seed}-25 ") == 1  # the train command's --out
            assert f"--seed {seed}" in printed
    assert main([*argv, "--train-seeds", "1,x"]) == 2
    assert "--train-seeds '1,x' must be a comma list of integers" in capsys.readouterr().err


def test_a_seeded_recipe_is_its_own_curve(tmp_path: Path) -> None:
    seeded = learning_curves.with_seed(RECIPES["act-state"], 2000)
    assert seeded.name == "act-state-seed2000" and seeded.train_args[-2:] == ("--seed", "2000")
    assert seeded.pool == "state" and seeded.train_resumes
    _, train, _ = cell_stages(tmp_path, seeded, 25, eval_seeds=100, workers=None)
    assert train.output == tmp_path / "runs" / "act-state-seed2000-25" and train.argv[-1] == "--resume"


def test_vla_recipes_record_state_and_cameras_and_build_their_backbone_first(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    (tmp_path / "pants.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    argv = ["--out", str(tmp_path), "--policies", "smolvla-state,pi0-state", "--demos", "25", "--dry-run"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    # One pool for both: the object state and two 72x96 cameras (Item 1a's data), not the camera-less one.
    record = [line for line in printed.splitlines() if "libs/datasets:record" in line]
    assert len(record) == 1
    assert (
        "--environment-state --image-size 72x96 --noise 2.0" in record[0] and "--no-cameras" not in record[0]
    )
    assert str(tmp_path / "data" / "state-cameras-pool") in record[0]
    # Each backbone built once by its own command, before any training, which then trains on it.
    commands = [line for line in printed.splitlines() if line.startswith("./pants")]
    backbones = [n for n, line in enumerate(commands) if "backends/torch_lerobot:tiny-backbone" in line]
    trains = [n for n, line in enumerate(commands) if "backends/torch_lerobot:train " in line]
    assert len(backbones) == 2 and len(trains) == 2 and max(backbones) < min(trains)
    for policy in ("smolvla", "pi0"):
        backbone = tmp_path / "backbones" / policy
        assert f"tiny-backbone -- --policy {policy} --out {backbone}" in printed
        train = next(line for line in commands if f"--policy {policy} " in line and ":train " in line)
        assert f"--tiny-backbone {backbone}" in train


def test_vla_recipes_are_the_measured_ones(tmp_path: Path) -> None:
    # docs/vla-and-vision.md "Item 1a": SmolVLA 10,000 steps saved every 2,500, Pi0 7,000 saved every 3,500.
    for name, policy, steps, save_freq, last in (
        ("smolvla-state", "smolvla", "10000", "2500", "010000"),
        ("pi0-state", "pi0", "7000", "3500", "007000"),
    ):
        recipe = RECIPES[name]
        args = recipe.train_args
        assert args[args.index("--policy") + 1] == policy and args[args.index("--preset") + 1] == "state"
        assert args[args.index("--steps") + 1] == steps and args[args.index("--save-freq") + 1] == save_freq
        assert args[args.index("--batch-size") + 1] == "32"
        # threads as the other torch recipes pass them
        assert args[args.index("--threads") + 1] == RECIPES["act-state"].train_args[-1] == "1"
        # the backbone folder depends on --out: not part of the recipe a stored cell is compared with
        assert "--tiny-backbone" not in args and recipe.tiny_backbone == policy
        assert recipe.pool == "state-cameras" and recipe.last_checkpoint == last
        _, train, evaluate = cell_stages(tmp_path, recipe, 50, eval_seeds=100, workers=None)
        assert train.done_marker == tmp_path / "runs" / f"{name}-50" / "checkpoints" / last
        assert f"torch_lerobot:{train.done_marker}" in evaluate.argv


def test_backbone_stage_is_stamped_and_a_rebuilt_backbone_makes_the_runs_stale(tmp_path: Path) -> None:
    stage = learning_curves.backbone_stage(tmp_path, "pi0")
    backbone = tmp_path / "backbones" / "pi0"
    assert stage.output == backbone and stage.done_marker == backbone / "tiny_backbone.json"
    assert stage.module == "backends.torch_lerobot.tiny_backbones"
    # the builder refuses a non-empty folder: an interrupted build is set aside, not continued
    assert not stage.resumes
    _, train, _ = cell_stages(tmp_path, RECIPES["pi0-state"], 25, eval_seeds=100, workers=None)
    assert backbone in train.inputs
    assert train.fingerprint[-2:] == ("--tiny-backbone", str(backbone))
    assert train.argv == (*train.fingerprint, "--resume")
    # recipes without a backbone train as before
    _, act_train, _ = cell_stages(tmp_path, RECIPES["act-state"], 25, eval_seeds=100, workers=None)
    assert "--tiny-backbone" not in act_train.argv and len(act_train.inputs) == 1


def test_the_backbones_are_built_with_the_pools_before_any_cell(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "pants.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    batches: list[list[str]] = []

    def note_then_stop(stages, *_):
        batches.append([stage.name for stage in stages])
        raise learning_curves.QuickstartError("stop after the setup stages")

    monkeypatch.setattr(learning_curves, "run_stages", note_then_stop)
    assert main(["--out", str(tmp_path), "--policies", "pi0-state,act-state", "--demos", "25"]) == 2
    assert batches == [["record-state", "record-state-cameras", "backbone-pi0"]]
