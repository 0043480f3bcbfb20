"""Every command the README, docs/*.md and the one-line errors show names a real Pants target and only flags
its command takes: the flags are read from the command's ``--help`` when its entry point runs in this resolve
(the sim one), else looked for in its entry point's source. Every other flag an error names is a flag some
command of ours takes, and no error points into a checkpoint at a file checkpoints no longer carry. Docs and
hints cannot rot silently."""

from __future__ import annotations

import ast
import contextlib
import functools
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


def source_files() -> list[Path]:
    return sorted(
        path
        for root in SOURCE_ROOTS
        for path in (ROOT / root).rglob("*.py")
        if not path.name.endswith("_test.py") and path.name != "fixtures.py"
    )


def message_text(node: ast.expr) -> str | None:
    """A message argument as text (an f-string's values as ``{}``), or None when it is not a string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = message_text(node.left), message_text(node.right)
        return None if left is None or right is None else left + right
    return None


def raised_messages(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of each string a ``raise Error(...)`` or a ``print("error: ...")`` carries."""
    found = []
    for node in ast.walk(tree):
        call = node.exc if isinstance(node, ast.Raise) else node
        if not isinstance(call, ast.Call):
            continue
        is_print = isinstance(call.func, ast.Name) and call.func.id == "print"
        if not isinstance(node, ast.Raise) and not is_print:
            continue
        for argument in call.args:
            text = message_text(argument)
            if text is not None and (not is_print or text.startswith("error:")):
                found.append((argument.lineno, text))
    return found


@functools.cache
def error_messages() -> tuple[tuple[str, str], ...]:
    """(file:line, text) of every one-line error message in the project's code (parsed once per run)."""
    return tuple(
        (f"{path.relative_to(ROOT)}:{line}", text)
        for path in source_files()
        for line, text in raised_messages(ast.parse(path.read_text()))
    )


#: Where the one-line errors are raised (their messages are the hints checked here).
SOURCE_ROOTS = ("libs", "services", "backends")


def commands() -> list[tuple[str, str, str, str]]:
    """(page or error's place, verb, target, arguments) for every command on every page and in every
    error message."""
    texts = [(page.name, page.read_text()) for page in PAGES] + list(error_messages())
    found = []
    for page, text in texts:
        for match in COMMAND.finditer(text):
            verb, target, rest = match.group(1), match.group(2), match.group(3)
            target = target if target.endswith("::") else target.rstrip(".,:;)")
            if PLACEHOLDER in target or "{" in target:
                continue
            arguments = rest.split(" -- ", 1)[1] if " -- " in rest else ""
            found.append((page, verb, target, arguments.strip()))
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


#: A flag in prose: ``--name`` not inside a word (``--`` alone, lerobot's ``--env.x`` and the like aside).
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w.-])")


def defined_flags() -> set[str]:
    """Every flag a command of ours takes: argparse's ``"--name"`` literals and the flags derived from
    config dataclasses (``libs.config_flags``: the field's name, or the ``name=`` it gives)."""
    flags: set[str] = set()
    for path in [*source_files(), *sorted((ROOT / "benchmarks").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and FLAG.fullmatch(node.value):
                flags.add(node.value)
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and "flag(" in ast.unparse(node)
            ):
                flags.add("--" + node.target.id.replace("_", "-"))
    return flags


#: Flags of tools that are not ours, named in hints on purpose (Ray's CLI, pip).
OTHER_TOOLS_FLAGS = {"--head", "--address", "--index-url"}


def test_every_flag_an_error_names_is_a_flag_of_ours() -> None:
    known = defined_flags() | OTHER_TOOLS_FLAGS
    unknown = [
        f"{place}: {flag}"
        for place, text in error_messages()
        for flag in FLAG.findall(COMMAND.sub("", text))
        if flag not in known
    ]
    assert not unknown, "errors name flags no command takes:\n" + "\n".join(unknown)


def test_no_error_points_at_a_file_checkpoints_no_longer_carry() -> None:
    from libs.policy_api.card import LEGACY_FILES

    legacy = set(LEGACY_FILES.values())
    stale = [
        f"{place}: {name}"
        for place, text in error_messages()
        for name in re.findall(r"<checkpoint>/([\w./-]+)", text)
        if name.rstrip(".,;)") in legacy
    ]
    assert not stale, "errors name checkpoint files that cards replaced:\n" + "\n".join(stale)


def test_every_dataset_file_an_error_names_is_one_a_recording_writes(tmp_path: Path) -> None:
    from libs.datasets.record import record_dataset
    from libs.sim.scene_config import SceneConfig

    named = {
        (place, name)
        for place, text in error_messages()
        for name in re.findall(r"(?<![\w/])meta/[\w.-]+\.\w+", text)
    }
    assert named, "no error names a dataset's meta/ file: the pattern no longer matches the messages"
    record_dataset(
        tmp_path / "dataset",
        "scripted",
        episodes=1,
        scene=SceneConfig().with_image_size(32, 48),
        max_steps=8,
        keep="never_picked_up",
        progress=False,
    )
    root = tmp_path / "dataset"
    written = {path.relative_to(root).as_posix() for path in root.rglob("*")}
    missing = sorted(f"{place}: {name}" for place, name in named if name not in written)
    assert not missing, "errors name dataset files a recording does not write:\n" + "\n".join(missing)
