import pytest

from libs.datasets.judges import keep_filter
from libs.datasets.lerobot_v3 import DatasetError


def test_keep_filter_is_the_one_parser_of_keep() -> None:
    assert keep_filter(None) is None and keep_filter("all") is None and keep_filter("") is None
    keep = keep_filter("success, missed_goal")
    assert keep is not None
    assert keep({"outcome": "success"}, {}) and keep({"outcome": "missed_goal"}, {})
    assert not keep({"outcome": "never_picked_up"}, {})
    with pytest.raises(DatasetError, match="unknown outcome"):
        keep_filter("sucess")
    with pytest.raises(DatasetError, match="unknown episode judge"):
        keep_filter("oracle:/nowhere")
