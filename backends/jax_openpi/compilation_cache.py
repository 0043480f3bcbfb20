"""JAX's persistent compilation cache, so a second run (or test session) skips XLA compiles."""

from __future__ import annotations

import os
from pathlib import Path

import jax

CACHE_ENV_VAR = "SO101LAB_JAX_CACHE"


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV_VAR)
    return Path(configured) if configured else Path.home() / ".cache" / "so101lab" / "jax"


def enable_compilation_cache(directory: Path | str | None = None) -> Path:
    """Turn the cache on (idempotent). Small programs are cached too: on a CPU even they take seconds."""
    path = Path(directory) if directory is not None else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
