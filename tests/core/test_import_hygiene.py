"""`import span_tree` loads the standard library only (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pyarrow", "duckdb", "polars", "textual", "typer", "rich", "fsspec")

PROBE = """
import json, sys
import span_tree
with span_tree.span("probe", n=1):
    span_tree.get_logger(__name__).info("hello")
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps(loaded))
"""


def loaded_modules(code: str, *extra_env: tuple[str, str]) -> set[str]:
    """Run `code` in a fresh interpreter and return the top-level modules it loaded."""
    env = {"PATH": "/usr/bin:/bin", "SPANTREE_STORE": "none", "SPANTREE_JSONL": "0"}
    env.update(dict(extra_env))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env=env,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_loads_no_heavy_dependency() -> None:
    """`import span_tree` plus a first span loads none of the heavy libraries."""
    loaded = loaded_modules(PROBE)
    assert [] == [name for name in HEAVY if name in loaded]


def test_plain_import_loads_no_heavy_dependency() -> None:
    """A bare `import span_tree` (nothing else) loads none of the heavy libraries."""
    code = "import json, sys, span_tree; print(json.dumps(sorted(sys.modules)))"
    loaded = {name.split(".")[0] for name in loaded_modules(code)}
    assert [] == [name for name in HEAVY if name in loaded]


def test_heavy_dependencies_come_with_their_sinks() -> None:
    """Importing the console sink does load rich: the probe itself is sound."""
    code = (
        "import json, sys, span_tree.sinks.console; "
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    assert "rich" in loaded_modules(code)


def test_cli_start_loads_only_what_every_command_needs() -> None:
    """`spantree --help` pays for typer and rich, not for the server, TUI or engines."""
    code = "import json, sys, span_tree.cli; print(json.dumps(sorted(sys.modules)))"
    loaded = {name.split(".")[0] for name in loaded_modules(code)}
    command_specific = ("starlette", "uvicorn", "textual", "duckdb", "polars", "pyarrow")
    assert [] == [name for name in command_specific if name in loaded]
