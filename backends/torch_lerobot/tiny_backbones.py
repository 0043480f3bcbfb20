"""placeholder"""

from pathlib import Path


def prepare_for_loading(config, pretrained_dir: Path) -> None:
    return None
