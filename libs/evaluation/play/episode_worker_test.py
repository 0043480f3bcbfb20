from pathlib import Path

import pytest

from libs.evaluation.plan.checkpoints import FoundCheckpoint
from libs.evaluation.plan.tasks import EnvSettings, EpisodeTask
from libs.evaluation.play.episode_worker import EpisodeWorker
from libs.policy_api.registry import PolicyLoadError, register_backend


def test_a_checkpoint_that_goes_away_while_loading_is_one_line_naming_it(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run" / "checkpoints" / "000002"
    checkpoint.mkdir(parents=True)

    def load_while_it_is_deleted(argument: str):
        checkpoint.rmdir()  # as `rm -r` in another shell would, halfway through the loader's reads
        raise FileNotFoundError(2, "No such file or directory", str(checkpoint / "params" / "shard0"))

    register_backend("test_vanishing", load_while_it_is_deleted)
    target = FoundCheckpoint("000002", f"test_vanishing:{checkpoint}", 2, path=checkpoint).planned(None, None)
    expected = r"000002 went away while it was being loaded .*run the same command"
    with pytest.raises(PolicyLoadError, match=expected):
        EpisodeWorker(EnvSettings()).run(EpisodeTask(target, seed=0))


def test_a_loader_failing_on_a_checkpoint_that_is_there_keeps_its_own_error(tmp_path: Path) -> None:
    def broken(argument: str):
        raise ValueError("unexpected key in params")

    register_backend("test_broken", broken)
    target = FoundCheckpoint("000001", f"test_broken:{tmp_path}", 1, path=tmp_path).planned(None, None)
    with pytest.raises(ValueError, match="unexpected key"):
        EpisodeWorker(EnvSettings()).run(EpisodeTask(target, seed=0))
