"""Command-line flags derived from config dataclasses: the config is the CLI.

A field becomes a flag when its metadata carries ``flag(help=...)``. The flag's name is the field's
(``--max-steps`` for ``max_steps``) unless ``name`` says otherwise; its type comes from the annotation
(``int``, ``float``, ``str``, ``Path``, each optionally ``| None``; ``bool`` is a switch, ``--no-…`` for a
field that defaults to True; ``tuple[str, ...]`` is a comma list) unless ``parse`` is given; its default is
the field's. ``add_flags`` adds a dataclass's flags to a parser (or group), ``config_from_flags`` builds the
dataclass back from the parsed arguments, so each option is written once, beside the setting it sets.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

_FLAG = "flag"


@dataclasses.dataclass(frozen=True)
class Flag:
    help: str
    name: str | None = None
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[Any, ...] | None = None
    required: bool = False


def flag(help: str, **options: Any) -> dict[str, Flag]:
    """Field metadata that makes the field a flag: ``field(default=..., metadata=flag("..."))``."""
    return {_FLAG: Flag(help, **options)}


def comma_list(text: str) -> tuple[str, ...]:
    """``a, b,c`` → ``("a", "b", "c")`` (empty names dropped)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def flag_fields(cls: type) -> list[tuple[dataclasses.Field[Any], Flag, Any]]:
    """(field, its flag, its resolved annotation) for each field of ``cls`` that is a flag."""
    hints = typing.get_type_hints(cls)
    return [
        (field, field.metadata[_FLAG], hints[field.name])
        for field in dataclasses.fields(cls)
        if _FLAG in field.metadata
    ]


def flag_name(field: dataclasses.Field[Any], spec: Flag) -> str:
    return spec.name or "--" + field.name.replace("_", "-")


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Iterable[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Adds ``cls``'s flags (those named in ``only``, when given) to ``parser``; ``defaults`` overrides a
    field's default on the command line."""
    wanted = set(only) if only is not None else None
    for field, spec, annotation in flag_fields(cls):
        if wanted is not None and field.name not in wanted:
            continue
        default = (defaults or {}).get(field.name, _default(field))
        options: dict[str, Any] = {"dest": field.name, "help": spec.help}
        kind = _plain_type(annotation)
        if kind is bool and spec.parse is None:
            options["action"] = "store_false" if default else "store_true"
        else:
            options.update(default=default, type=spec.parse or _parser_for(kind, field.name))
            if spec.metavar:
                options["metavar"] = spec.metavar
            if spec.choices:
                options["choices"] = spec.choices
            if spec.required:
                options["required"] = True
                options.pop("default")
        parser.add_argument(flag_name(field, spec), **options)


def config_from_flags(cls: type, arguments: argparse.Namespace, **values: Any) -> Any:
    """An instance of ``cls`` from the parsed flags it added (fields it did not add keep their default, or
    take ``values``)."""
    parsed = {
        field.name: getattr(arguments, field.name)
        for field, _spec, _ in flag_fields(cls)
        if hasattr(arguments, field.name)
    }
    return cls(**{**parsed, **values})


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _plain_type(annotation: Any) -> Any:
    """``X | None`` → ``X``; anything else as it is."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _parser_for(kind: Any, name: str) -> Callable[[str], Any]:
    if kind in (int, float, str, Path):
        return kind
    if typing.get_origin(kind) is tuple and typing.get_args(kind) == (str, ...):
        return comma_list
    raise TypeError(f"field {name!r} of type {kind!r} needs flag(parse=...) to be a flag")
