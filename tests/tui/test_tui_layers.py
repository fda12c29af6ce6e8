"""The TUI is app -> screens -> widgets: screens never import each other or the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.imports import imported_submodules

PACKAGE = Path(__file__).parents[2] / "span_tree" / "tui"

# Bottom first. A module imports only modules of lower layers (type-only imports under
# `if TYPE_CHECKING:` do not count): a screen reaches another screen through a message
# or an app method, so only the app knows them all.
LAYERS: list[set[str]] = [
    {"_format", "_messages", "_source", "_state"},
    {"_screen", "_widgets"},
    {"_dialogs", "_errors", "_names", "_span", "_trace", "_traces"},
    {"_app"},
    {"__init__"},
]
LAYER_OF = {module: index for index, layer in enumerate(LAYERS) for module in layer}


def test_every_tui_module_has_a_layer() -> None:
    """A new TUI module is placed in a layer (else this test is blind to it)."""
    assert sorted(LAYER_OF) == sorted(path.stem for path in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("module", sorted(LAYER_OF))
def test_tui_module_imports_only_lower_layers(module: str) -> None:
    """``module`` imports no TUI module of its own layer or above."""
    imported = imported_submodules(PACKAGE / f"{module}.py", "span_tree.tui")
    upward = sorted(name for name in imported if LAYER_OF[name] >= LAYER_OF[module])
    assert [] == upward
