import pytest
import ray

from libs.evaluation.plan.tasks import SweepError
from libs.evaluation.play import ray_pool


def flaky_init(failures: int, calls: list[str]):
    def init(**kwargs) -> None:
        calls.append("init")
        if calls.count("init") <= failures:
            raise Exception("The current node timed out during startup. This could happen because ...")

    return init


def test_a_local_start_that_misses_rays_deadline_is_tried_once_more(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", flaky_init(1, calls))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    assert ray_pool.connect_ray(None, workers=2) is True
    assert calls == ["init", "shutdown", "init"]  # what the failed attempt started is stopped first


def test_a_local_start_that_fails_twice_is_one_line_naming_the_fix(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", flaky_init(2, calls))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    with pytest.raises(SweepError, match=r"Ray could not start on this machine's cores .*--serial") as raised:
        ray_pool.connect_ray(None, workers=2)
    assert "\n" not in str(raised.value) and calls.count("init") == 2
