"""Which modules of a package a source file imports: the layering tests' one parser."""

from __future__ import annotations

import ast
from pathlib import Path


def imported_submodules(path: Path, package: str) -> set[str]:
    """Names of ``package``'s direct submodules that ``path`` imports, anywhere in it,
    except type-only imports (under ``if TYPE_CHECKING:``). ``from package import name``
    counts ``name``."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for statement in ast.walk(tree)
        if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test)
        for block in statement.body
        for node in ast.walk(block)
    }
    prefix = package + "."
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == package:
                found.update(alias.name for alias in node.names)
            elif node.module.startswith(prefix):
                found.add(node.module[len(prefix) :].split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(
                alias.name[len(prefix) :].split(".")[0]
                for alias in node.names
                if alias.name.startswith(prefix)
            )
    return found
