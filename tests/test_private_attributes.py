"""No module of bot/ or cogs/ reads a private attribute of a discord.py object, except bot/voice_internals.py.

discord.py's private attributes change without notice between releases; the few the bot truly needs live in
one accessor module, checked by tests/test_voice_internals.py. Our own private attributes (`self._players`,
`self._connection` of our database wrapper) are ours to use and are not flagged.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import discord

from tests.source_scan import parse_files, parse_source

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {ROOT / "bot" / "voice_internals.py"}
_PRIVATE_USE = re.compile(r"\._([A-Za-z]\w*)|\bdef (_[A-Za-z]\w*)")
_SELF_ASSIGNED = re.compile(r"\bself\.(_[A-Za-z]\w*)")
_ATTRIBUTE_FUNCTIONS = {"getattr", "hasattr", "setattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@functools.cache
def discord_private_names() -> frozenset[str]:
    """Every private name discord.py's own source uses as an attribute or method."""
    names: set[str] = set()
    for path in Path(discord.__file__).parent.rglob("*.py"):
        for match in _PRIVATE_USE.finditer(path.read_text(encoding="utf-8")):
            names.add("_" + match.group(1) if match.group(1) else match.group(2))
    return frozenset(names)


@functools.cache
def inherited_private_names(base: type) -> frozenset[str]:
    """The private names a class gets from the discord.py classes it derives from."""
    names: set[str] = set()
    for klass in base.__mro__:
        if not klass.__module__.startswith("discord"):
            continue
        names.update(name for name in vars(klass) if _private(name))
        slots = vars(klass).get("__slots__", ())
        names.update(name for name in ([slots] if isinstance(slots, str) else slots) if _private(name))
        try:
            names.update(_SELF_ASSIGNED.findall(inspect.getsource(klass)))
        except (OSError, TypeError):
            pass
    return frozenset(names)


class _Scanner(ast.NodeVisitor):
    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.inherited: list[frozenset[str]] = [frozenset()]
        self.found: list[tuple[int, str]] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        names: set[str] = set()
        for base in node.bases:
            try:
                resolved = eval(ast.unparse(base), dict(self.namespace))
            except Exception:
                continue
            if isinstance(resolved, type):
                names |= inherited_private_names(resolved)
        self.inherited.append(frozenset(names))
        self.generic_visit(node)
        self.inherited.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        if _private(name):
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if (on_self and name in self.inherited[-1]) or (not on_self and name in discord_private_names()):
                self.found.append((node.lineno, ast.unparse(node)))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        if isinstance(function, ast.Name) and function.id in _ATTRIBUTE_FUNCTIONS and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and _private(name.value):
                if name.value in discord_private_names() or name.value in self.inherited[-1]:
                    self.found.append((node.lineno, ast.unparse(node)))
        self.generic_visit(node)


def scan(tree: ast.Module, namespace: dict[str, Any]) -> list[tuple[int, str]]:
    """The (line, expression) of every read of a discord.py private attribute in a module's tree."""
    scanner = _Scanner(namespace)
    scanner.visit(tree)
    return scanner.found


def test_no_discord_private_attribute_outside_the_accessor_module() -> None:
    found: list[str] = []
    files = sorted(path for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "cogs").rglob("*.py")])
    files = [path for path in files if path not in ALLOWED]
    assert len(files) > 20
    for path, tree in zip(files, parse_files(files), strict=True):
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for line, expression in scan(tree, vars(module)):
            found.append(f"{path.relative_to(ROOT)}:{line}: {expression}")
    assert found == [], "discord.py private attributes used; go through bot/voice_internals.py:\n" + "\n".join(found)


def _scan_snippet(source: str) -> list[str]:
    namespace: dict[str, Any] = {"discord": discord}
    exec(compile(source, "<snippet>", "exec"), namespace)
    return [expression for _, expression in scan(parse_source(source), namespace)]


def test_the_scan_flags_what_it_must() -> None:
    source = """
import discord

def caller(guild, client, embed):
    guild._voice_state_for(1)
    getattr(client, "_connection")
    return embed._fields

class Source(discord.FFmpegPCMAudio):
    def cleanup(self):
        return self._stdout

class Menu(discord.ui.View):
    def check(self):
        return self._children
"""
    assert _scan_snippet(source) == [
        "guild._voice_state_for",
        "getattr(client, '_connection')",
        "embed._fields",
        "self._stdout",
        "self._children",
    ]


def test_the_scan_leaves_our_own_private_attributes_alone() -> None:
    source = """
import discord
from discord.ext import commands

class Database:
    def __init__(self):
        self._connection = None

    def use(self):
        return self._connection

class Player(commands.Cog):
    def __init__(self):
        self._players = {}
        self._alone_since = {}

    def count(self):
        return len(self._players) + len(self._alone_since)
"""
    assert _scan_snippet(source) == []
