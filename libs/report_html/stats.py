"""The two statistics the pages compute themselves (a running sweep's rates, a comparison the sweep never
made): the 95% Wilson interval and the exact McNemar test. ``libs.evaluation.stats.metrics`` uses these same
functions (this layer sits below it), so the pages and the sweep's reports cannot disagree."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def exact_mcnemar_p(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar (sign) test on the discordant pairs."""
    n = only_first + only_second
    if n == 0:
        return 1.0
    k = min(only_first, only_second)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"
