"""Parsing our own source files for the tests that scan them."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# Parses every source given as a pickled list of (source, filename) on stdin; writes the pickled trees.
_PARSER = (
    "import ast, pickle, sys\n"
    "sources = pickle.load(sys.stdin.buffer)\n"
    "pickle.dump([ast.parse(source, filename=name) for source, name in sources], sys.stdout.buffer)\n"
)


def parse_sources(sources: Sequence[tuple[str, str]]) -> list[ast.Module]:
    """The ASTs of (source, filename) pairs, parsed in a child process.

    CPython 3.11 keeps the AST converter's recursion count in module state shared by every thread; another
    thread of the test process formatting a traceback (3.11's traceback module parses source lines for its
    carets) at the same moment makes ast.parse fail with "AST constructor recursion depth mismatch"
    (cpython#106905). A child process has no other threads.
    """
    completed = subprocess.run(
        [sys.executable, "-c", _PARSER],
        input=pickle.dumps(list(sources)),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        raise SyntaxError(completed.stderr.decode(errors="replace")[-2000:])
    return pickle.loads(completed.stdout)  # our own child process's output


def parse_files(paths: Sequence[Path]) -> list[ast.Module]:
    """The ASTs of source files, parsed together in one child process."""
    return parse_sources([(path.read_text(encoding="utf-8"), str(path)) for path in paths])


def parse_source(source: str, filename: str = "<source>") -> ast.Module:
    """The AST of one piece of source, parsed in a child process."""
    return parse_sources([(source, filename)])[0]
