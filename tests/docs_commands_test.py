"""Every command the README and docs/*.md show names a real Pants target and only flags its command takes:
the flags are read from the command's ``--help`` when its entry point runs in this resolve (the sim one),
else looked for in its entry point's source. Docs cannot rot silently."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: ``./pants run|test TARGET [-- ARGS]`` up to the end of a line, a closing backtick or a shell comment.
COMMAND = re.compile(r"\./pants (run|test) ([^\s`]+)((?: [^`#\n]*)?)")
#: A command shortened in prose (``services/eval:sweep…``).
PLACEHOLDER = "…"


def commands() -> list[tuple[str, str, str, str]]:
    """(page, verb, target, arguments) for every command on every page."""
    found = []
    for page in PAGES:
        for match in COMMAND.finditer(page.read_text()):
            verb, target, rest = match.group(1), match.group(2), match.group(3)
            target = target if target.endswith("::") else target.rstrip(".,:;)")
            if PLACEHOLDER in target:
                continue
            arguments = rest.split(" -- ", 1)[1] if " -- " in rest else ""
            found.append((page.name, verb, target, arguments.strip()))
    return found


def build_targets(folder: str) -> dict[str, str]:
    """target name -> its BUILD block, for the BUILD file of ``folder``."""
    build = ROOT / folder / "BUILD"
    if not build.is_file():
        return {}
    text = build.read_text()
    blocks = re.split(r"\n(?=\w+\()", text)
    targets = {}
    for block in blocks:
        name = re.search(r'name="([^"]+)"', block)
        if name:
            targets[name.group(1)] = block
    return targets


def split_target(target: str) -> tuple[str, str | None]:
    folder, _, name = target.partition(":")
    return folder.removeprefix("//").rstrip("/"), name or None


@pytest.mark.parametrize(("page", "verb", "target", "arguments"), commands())
def test_the_command_names_a_real_target(page: str, verb: str, target: str, arguments: str) -> None:
    if target.endswith("::"):
        assert (ROOT / target.removesuffix("::")).is_dir() or target == "::", f"{page}: {target}"
        return
    folder, name = split_target(target)
    targets = build_targets(folder)
    assert name in targets, f"{page}: {target} is not a target of {folder or '.'}/BUILD"


def entry_point(target: str) -> tuple[str, Path] | None:
    """(module, file) of a pex_binary target's entry point (``file.py:main`` beside its BUILD, or
    ``package.module:main``)."""
    folder, name = split_target(target)
    match = re.search(r'entry_point="([^":]+)', build_targets(folder).get(name or "", ""))
    if not match:
        return None
    entry = match.group(1)
    path = ROOT / folder / entry if entry.endswith(".py") else ROOT / (entry.replace(".", "/") + ".py")
    return str(path.relative_to(ROOT).with_suffix("")).replace("/", "."), path


def help_text(module: str, leading: list[str]) -> str | None:
    """The command's ``--help`` (after its positional words, for sub-commands), or None when its entry
    point does not import in this resolve."""
    try:
        main = importlib.import_module(module).main
    except ImportError:
        return None
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*leading, "--help"])
    return out.getvalue()


RUN_COMMANDS = [command for command in commands() if command[1] == "run" and command[3]]


@pytest.mark.parametrize(("page", "verb", "target", "arguments"), RUN_COMMANDS)
def test_the_command_uses_only_flags_it_takes(page: str, verb: str, target: str, arguments: str) -> None:
    found = entry_point(target)
    if found is None:
        pytest.skip(f"{target} is not a pex_binary with an entry point")
    module, path = found
    words = shlex.split(arguments.replace("<", "").replace(">", "").replace("\\", " "))
    flags = [word.split("=", 1)[0] for word in words if word.startswith("--") and word != "--"]
    leading = []
    for word in words:
        if word.startswith("-"):
            break
        leading.append(word)
    text = help_text(module, leading[:1]) if module.startswith(("libs.", "services.")) else None
    if text is None:  # another resolve's entry point: its flags are written in its source
        text = path.read_text()
    for flag in flags:
        if flag.startswith("--env.") or flag.startswith("--policy.") or flag.startswith("--eval."):
            continue  # lerobot-eval's own (draccus) options
        assert re.search(rf"{re.escape(flag)}(?![\w-])", text), f"{page}: {target} takes no {flag}"
