"""Two checkpoints (of one sweep or of two) on the seeds both were scored on: which seeds flipped, each
with both episodes' sentences and whisker videos side by side, and the exact McNemar test of the split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from libs.report_html.folder import Episode, SweepFolder
from libs.report_html.stats import exact_mcnemar_p, percent, wilson_interval


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a checkpoint of a sweep folder, its media under ``prefix`` (a URL)."""

    folder: SweepFolder
    checkpoint: str
    label: str
    prefix: str = ""

    @property
    def episodes(self) -> list[Episode]:
        return self.folder.episodes_of(self.checkpoint)


@dataclass(frozen=True)
class Pairing:
    shared: list[int]
    #: (seed, first's episode, second's episode) where one succeeded and the other did not
    flips: list[tuple[int, Episode, Episode]]
    only_first: int
    only_second: int
    both: int
    neither: int

    @property
    def p_value(self) -> float:
        return exact_mcnemar_p(self.only_first, self.only_second)


def pair(first: Sequence[Episode], second: Sequence[Episode]) -> Pairing:
    a = {e.seed: e for e in first}
    b = {e.seed: e for e in second}
    shared = sorted(a.keys() & b.keys())
    flips = [(s, a[s], b[s]) for s in shared if a[s].success != b[s].success]
    only_first = sum(a[s].success and not b[s].success for s in shared)
    only_second = sum(b[s].success and not a[s].success for s in shared)
    both = sum(a[s].success and b[s].success for s in shared)
    return Pairing(
        shared, flips, only_first, only_second, both, len(shared) - only_first - only_second - both
    )


def render_comparison(first: Side, second: Side, limit: int | None = None) -> str:
    """The comparison as an HTML fragment (``limit``: at most this many flipped seeds drawn)."""
    pairing = pair(first.episodes, second.episodes)
    parts = []
    if not pairing.shared:
        return (
            f'<p class="warn">{escape(first.label)} and {escape(second.label)} share no seeds: score '
            "them on the "
            "same seeds (the same --seed and --episodes) to compare them episode by episode.</p>"
        )
    n = len(pairing.shared)
    rows = []
    for side, wins in (
        (first, pairing.only_first + pairing.both),
        (second, pairing.only_second + pairing.both),
    ):
        low, high = wilson_interval(wins, n)
        rows.append(
            f"<tr><td>{escape(side.label)}</td><td class='num'>{wins}/{n} ({percent(wins / n)})</td>"
            f"<td class='num'>{percent(low)}–{percent(high)}</td></tr>"
        )
    verdict = (
        "the difference is unlikely to be chance (p < 0.05)"
        if pairing.p_value < 0.05
        else "not enough evidence that either is better (p ≥ 0.05)"
    )
    parts.append(
        "<table><thead><tr><th>checkpoint</th><th class='num'>success on shared seeds</th>"
        f"<th class='num'>95% interval</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p id="pairing-summary">{n} shared seeds: <strong>{len(pairing.flips)} flipped</strong> '
        f"({pairing.only_first} only {escape(first.label)}, {pairing.only_second} only "
        f"{escape(second.label)}), "
        f"{pairing.both} both succeeded, {pairing.neither} both failed. Exact McNemar test on the flipped "
        f"seeds: p = {pairing.p_value:.3g}: {verdict}.</p>"
    )
    if not pairing.flips:
        parts.append(
            '<p class="muted">No seed flipped: both succeeded or both failed on every shared seed.</p>'
        )
        return "".join(parts)
    seeds = ", ".join(str(seed) for seed, _, _ in pairing.flips)
    parts.append(f'<p>Flipped seeds: <span id="flipped-seeds">{seeds}</span></p>')
    shown = pairing.flips if limit is None else pairing.flips[:limit]
    for seed, a, b in shown:
        parts.append(
            f'<h3 class="flip" data-seed="{seed}">Seed {seed}</h3><div class="pair">'
            f"{_episode_card(first, a)}{_episode_card(second, b)}</div>"
        )
    if len(shown) < len(pairing.flips):
        parts.append(f'<p class="muted">… and {len(pairing.flips) - len(shown)} more flipped seeds.</p>')
    return "".join(parts)


def _episode_card(side: Side, episode: Episode) -> str:
    outcome = str(episode.row.get("outcome", "?"))
    sentence = episode.sentence or (
        "Placed in the bowl." if episode.success else "No failure pattern recognised."
    )
    media = ""
    if "video" in episode.files:
        media += (
            f'<video class="whisker-video" controls muted preload="metadata" '
            f'src="{escape(side.prefix + episode.files["video"])}"></video>'
        )
    if "summary" in episode.files:
        media += (
            f'<img class="whisker-summary" alt="whisker summary" '
            f'src="{escape(side.prefix + episode.files["summary"])}">'
        )
    if not media:
        media = '<p class="muted">No whisker video recorded for this episode.</p>'
    return (
        f'<div class="side" data-checkpoint="{escape(side.checkpoint)}"><p><strong>'
        f"{escape(side.label)}</strong> "
        f'<span class="outcome {escape(outcome)}">{escape(outcome)}</span></p>'
        f'<p class="sentence">{escape(sentence)}</p>{media}</div>'
    )
