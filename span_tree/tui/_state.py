"""Remember the last namespace used per store, in a small JSON file.

Losing this file costs one extra key press, so reading and writing never raise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def default_state_path() -> Path:
    """``$XDG_CONFIG_HOME/spantree/tui.json`` (``~/.config/spantree/tui.json``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "spantree" / "tui.json"


def _load(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def last_namespace(path: Path, store: str) -> str | None:
    """The namespace last opened in ``store``, if any was remembered."""
    chosen = _load(path).get("last_namespace", {})
    value = chosen.get(store) if isinstance(chosen, dict) else None
    return value if isinstance(value, str) else None


def remember_namespace(path: Path, store: str, namespace: str) -> None:
    """Remember ``namespace`` as the last one opened in ``store`` (best effort)."""
    data = _load(path)
    chosen = data.get("last_namespace")
    if not isinstance(chosen, dict):
        chosen = {}
    chosen[store] = namespace
    data["last_namespace"] = chosen
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass
