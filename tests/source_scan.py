"""Parsing our own source files for the tests that scan them."""

from __future__ import annotations

import ast
import threading
from pathlib import Path


def parse_file(path: Path) -> ast.Module:
    """The AST of a source file (see parse_source)."""
    return parse_source(path.read_text(encoding="utf-8"), str(path))


def parse_source(source: str, filename: str = "<source>") -> ast.Module:
    """The AST of some source, parsed in a fresh thread.

    CPython 3.11 can raise "SystemError: AST constructor recursion depth mismatch" (cpython#106905) when the
    calling thread's recursion counters were left skewed by earlier code (seen mid-suite, never alone); a new
    thread starts with clean counters.
    """
    result: list[ast.Module] = []
    failure: list[BaseException] = []

    def parse() -> None:
        try:
            result.append(ast.parse(source, filename=filename))
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    worker = threading.Thread(target=parse, name="parse-source")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]
