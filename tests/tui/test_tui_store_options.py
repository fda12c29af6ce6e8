"""The TUI on an object store (storage options) and limited to one namespace, through the
app and through the `spantree tui` command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fixture_store
import pytest
from textual.widgets import Input, Label
from tui_helpers import SIZE, AppFactory, load, press, settle
from typer.testing import CliRunner

from span_tree.tui import SpanTreeApp
from span_tree.tui._dialogs import FindTraceScreen, NamespaceScreen
from span_tree.tui._names import NamesScreen


def names(app: SpanTreeApp) -> list[str]:
    screen = app.screen
    assert isinstance(screen, NamesScreen)
    return sorted(row.name for row in screen.rows)


async def test_s3_store_with_storage_options(
    s3_endpoint: Any, s3_bucket: str, make_app: AppFactory
) -> None:
    """An S3 store (moto on loopback) opens with its storage options: names, then a trace."""
    from span_tree.storage import open_store, write_spans

    url = f"s3://{s3_bucket}/store"
    options = s3_endpoint.storage_options
    write_spans(open_store(url, storage_options=options), fixture_store.standard_records())
    app = make_app(url, storage_options=options)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert ["auth.verify", "checkout", "db.query", "payment.charge"] == names(app)
        await press(pilot, "t")
        app.screen.query_one(Input).value = fixture_store.checkout_trace_id(2)
        await load(pilot, "enter")
        assert fixture_store.checkout_trace_id(2) == app.screen.trace_id  # type: ignore[attr-defined]


async def test_only_namespace_reads_nothing_else(store: Path, make_app: AppFactory) -> None:
    """Limited to one namespace: no picker, the picker offers it alone, and a trace of
    another namespace is not found."""
    app = make_app(store, namespace=None, only_namespace="batch")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert ("batch", ["nightly.report", fixture_store.LONG_NAME]) == (
            app.namespace,
            sorted(names(app)),
        )
        await press(pilot, "n")
        picker = app.screen
        assert isinstance(picker, NamespaceScreen)
        assert ["batch"] == picker.choices
        await press(pilot, "escape", "t")
        app.screen.query_one(Input).value = fixture_store.checkout_trace_id(2)  # a shop trace
        await load(pilot, "enter")
        dialog = app.screen
        assert isinstance(dialog, FindTraceScreen)
        message = str(dialog.query_one("#find-message", Label).render())
        assert f"no trace with id {fixture_store.checkout_trace_id(2)!r}" in message


def test_only_namespace_refuses_other_namespaces(store: Path) -> None:
    """A source limited to one namespace raises SourceError for any other, store-wide too."""
    from span_tree.tui import SourceError, StoreSource

    source = StoreSource.from_url(str(store), only_namespace="batch")
    for other in ("shop", ""):
        with pytest.raises(SourceError, match="only namespace 'batch' can be read here"):
            source.warm(other)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--storage-options", "not json"], "Invalid value for --storage-options: not JSON"),
        (["--storage-options", "[1]"], "Invalid value for --storage-options: must be a JSON"),
        (["-n", "shop", "--only-namespace", "batch"], "cannot open 'shop' when reading only"),
    ],
)
def test_tui_command_bad_options(tmp_path: Path, args: list[str], error: str) -> None:
    """Bad --storage-options or a namespace outside --only-namespace: one error line, exit 1."""
    from span_tree.cli import app

    result = CliRunner().invoke(app, ["tui", "--store", str(tmp_path), *args])
    assert (1, 1) == (result.exit_code, len(result.output.splitlines()))
    assert error in result.output


def test_tui_command_hands_its_options_to_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`spantree tui --storage-options ... --only-namespace ns` opens the source with those
    options, limited to ns, and the app on ns."""
    from span_tree.cli import app

    opened: list[SpanTreeApp] = []
    monkeypatch.setattr(SpanTreeApp, "run", lambda self, *a, **k: opened.append(self))
    args = ["tui", "--store", str(tmp_path), "--only-namespace", "batch"]
    result = CliRunner().invoke(app, [*args, "--storage-options", '{"anon": true}'])
    assert 0 == result.exit_code, result.output
    (tui,) = opened
    assert ({"anon": True}, "batch", "batch") == (
        tui.source.storage_options,
        tui.source.only_namespace,
        tui.requested_namespace,
    )
