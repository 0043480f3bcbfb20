"""Prints the stack this resolve carries: proof that the jax_openpi environment builds and runs."""

import flax
import jax
import numpy
import openpi_client


def main() -> None:
    print(
        f"jax_openpi resolve: jax {jax.__version__} on {jax.default_backend()}, flax {flax.__version__}, "
        f"numpy {numpy.__version__}, openpi-client {getattr(openpi_client, '__version__', 'installed')}"
    )


if __name__ == "__main__":
    main()
