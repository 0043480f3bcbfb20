"""Prints the stack this resolve carries: proof that the torch_lerobot environment builds and runs."""

import lerobot
import numpy
import torch


def main() -> None:
    versions = f"lerobot {lerobot.__version__}, torch {torch.__version__}, numpy {numpy.__version__}"
    print(f"torch_lerobot resolve: {versions}")


if __name__ == "__main__":
    main()
