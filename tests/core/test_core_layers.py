"""The core's layers point one way: a module imports only from the layers below it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.imports import imported_submodules

PACKAGE = Path(__file__).parents[2] / "span_tree"

# Bottom first. A module may import modules of lower layers only (type-only imports under
# `if TYPE_CHECKING:` do not count). The processor is generic: it is handed the span
# layer's converter instead of importing it; the runtime is handed `configure`.
LAYERS: list[set[str]] = [
    {"_atomic", "_ids", "_lazy", "_record", "_sanitize"},
    {"_display", "_spool_dir", "typing", "scrubbing"},
    {"_context", "_processor"},
    {"_runtime"},
    {"_span", "_threads"},
    {"_logging"},
    {"_config"},
    {"api"},
    {"__init__"},
]
# Only the top of the core assembles it with the packages above (sinks, otel...).
MAY_IMPORT_PACKAGES = {"_config", "api", "__init__"}
LAYER_OF = {module: index for index, layer in enumerate(LAYERS) for module in layer}


def test_every_core_module_has_a_layer() -> None:
    """A new module of the core package is placed in a layer (else this test is blind to it)."""
    core = {path.stem for path in PACKAGE.glob("*.py")} - {"cli"}
    core -= {"pytest_plugin", "testing"}  # entry points for users' tests, above the core
    assert set() == core - set(LAYER_OF)


@pytest.mark.parametrize("module", sorted(LAYER_OF))
def test_module_imports_only_lower_layers(module: str) -> None:
    """Each core module imports core modules of lower layers only."""
    imported = imported_submodules(PACKAGE / f"{module}.py", "span_tree")
    upward = {
        name
        for name in imported
        if name in LAYER_OF and LAYER_OF[name] >= LAYER_OF[module] and name != module
    }
    packages = {name for name in imported if name not in LAYER_OF}
    if module in MAY_IMPORT_PACKAGES:
        packages = set()
    assert (set(), set()) == (upward, packages)


def test_a_lower_module_importing_a_higher_one_is_caught(tmp_path: Path) -> None:
    """The checker sees function-local imports and ignores type-only ones."""
    source = tmp_path / "sample.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from span_tree._span import Span\n"
        "def later():\n    from span_tree._config import configure\n"
        "from span_tree import _record\n"
    )
    assert {"_config", "_record"} == imported_submodules(source, "span_tree")
