"""The train command's flags are TrainCommand's fields, and a bad value is refused in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backends.jax_openpi import train as train_lib
from backends.jax_openpi.config import CONFIGS, TrainConfig, get_config
from libs.config_flags import config_from_flags

REQUIRED = {"--config": "so101_test", "--dataset": "d", "--out": "o", "--steps": "7"}


def command_line(**flags: str) -> list[str]:
    """The required flags (``REQUIRED``, each replaced by ``flags`` when named there) and then ``flags``."""
    given = {"--" + name.replace("_", "-"): value for name, value in flags.items()}
    words = []
    for name, value in {**REQUIRED, **given}.items():
        words += [name] if value == "" else [name, value]
    return words


def parsed(words: list[str]) -> train_lib.TrainCommand:
    return config_from_flags(train_lib.TrainCommand, train_lib.build_parser().parse_args(words))


def test_the_parsers_flags_are_the_train_commands_fields() -> None:
    destinations = {action.dest for action in train_lib.build_parser()._actions if action.dest != "help"}
    assert destinations == {field.name for field in dataclasses.fields(train_lib.TrainCommand)}
    # each override names the TrainConfig setting it overrides
    assert set(train_lib.CONFIG_OVERRIDES) <= {field.name for field in dataclasses.fields(TrainConfig)}


def test_parsed_flags_make_the_command_and_its_config() -> None:
    command = parsed(command_line(batch_size="3", keep_period="4", peak_lr="0.01", no_ema="", no_resume=""))
    assert command == train_lib.TrainCommand(
        config="so101_test",
        dataset=Path("d"),
        out=Path("o"),
        steps=7,
        batch_size=3,
        keep_period=4,
        peak_lr=0.01,
        ema=False,
        resume=False,
    )
    expected = get_config("so101_test").replace(batch_size=3, keep_period=4, peak_lr=0.01, ema_decay=None)
    assert command.train_config() == expected


def test_without_overrides_the_named_config_is_used_as_it_is() -> None:
    command = parsed(command_line(config="so101_cpu"))
    assert command.train_config() == get_config("so101_cpu")
    assert command.resume and command.ema and not command.compute_norm_stats and not command.probe_loader


def test_the_flags_the_docs_and_quickstart_pass_still_parse() -> None:
    command = parsed(
        command_line(
            decay_steps="8000",
            save_interval="1000",
            keep_last="2",
            seed="3",
            compute_norm_stats="",
            probe_loader="",
        )
    )
    config = command.train_config()
    assert (config.decay_steps, config.save_interval, config.keep_last, config.seed) == (8000, 1000, 2, 3)
    assert command.compute_norm_stats and command.probe_loader
    assert all(name in train_lib.build_parser().format_help() for name in CONFIGS)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"config": "so101_huge"}, "error: unknown config 'so101_huge': use one of so101_test"),
        ({"steps": "0"}, "error: --steps 0: give at least 1"),
        ({"batch_size": "-2"}, "error: --batch-size -2: give at least 1"),
        ({"save_interval": "0"}, "error: --save-interval 0: give at least 1"),
        ({"peak_lr": "0"}, "error: --peak-lr 0.0: give a learning rate above 0"),
        ({"seed": "-1"}, "error: --seed -1: give 0 or more"),
    ],
)
def test_a_bad_flag_value_is_one_line(flags: dict[str, str], message: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    words = command_line(**{"dataset": str(tmp_path / "data"), "out": str(out), **flags})
    assert train_lib.main(words) == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1, error
    assert not out.exists()  # refused before anything was written
