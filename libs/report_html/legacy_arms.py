"""Stores and plans written before the perturbation arm was a field of its own kept an arm's episodes under
``<checkpoint id>+<arm>``. This is the one place that reads such an id: the results store migrates its rows
with it when it opens an old store (``libs.evaluation.results.store``), and the pages read an old store's
copy with it (``libs.report_html.folder``), which they never write.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

#: What joined a checkpoint id and its arm's name in the old ids.
LEGACY_ARM_SEPARATOR = "+"


def split_legacy_ids(ids: Iterable[str], declared_arms: Collection[str]) -> dict[str, tuple[str, str]]:
    """Each old id -> (checkpoint id, arm; "" for a control). ``<id>+<name>`` is an arm's when ``<id>`` is
    also stored as a control, or the sweep's ``perturbations`` setting (``declared_arms``) names ``<name>``
    (or is ``all``): a checkpoint id with a ``+`` of its own stays whole."""
    identifiers = set(ids)
    plain = {identifier for identifier in identifiers if LEGACY_ARM_SEPARATOR not in identifier}
    declared = set(declared_arms)
    split = {}
    for identifier in identifiers:
        control, separator, arm = identifier.rpartition(LEGACY_ARM_SEPARATOR)
        named = control in plain or arm in declared or "all" in declared
        split[identifier] = (control, arm) if separator and control and arm and named else (identifier, "")
    return split
