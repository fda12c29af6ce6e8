"""Never lose a span silently, never block the caller: namespace, stats, loss reports."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import span_tree
from span_tree import _config
from span_tree._processor import BatchProcessor
from span_tree.sinks.memory import MemorySink
from span_tree.sinks.parquet import ParquetSink


@pytest.mark.parametrize(
    "namespace", ["x" * 300, "", "a/b", "..", ".hidden", "tab\there", "naïve", "new\nline"]
)
def test_configure_rejects_an_unusable_namespace(namespace: str) -> None:
    """configure(namespace=...) refuses names no store partition can hold, clearly."""
    with pytest.raises(ValueError, match=r"invalid namespace .*1-128 characters"):
        span_tree.configure(namespace=namespace, sinks=[MemorySink()], store=None)


def test_configure_accepts_a_128_character_namespace(memory_sink: MemorySink) -> None:
    """The longest valid namespace is kept as given."""
    span_tree.configure(namespace="n" * 128, sinks=[memory_sink], store=None, console=False)
    with span_tree.span("work"):
        pass
    span_tree.flush()
    assert ["n" * 128] == [record.namespace for record in memory_sink.spans]


def test_invalid_namespace_from_the_environment_falls_back_with_a_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], memory_sink: MemorySink
) -> None:
    """SPANTREE_NAMESPACE that cannot be used gives one stderr line and "default", no raise."""
    monkeypatch.setenv("SPANTREE_NAMESPACE", "x" * 300)
    span_tree.configure(sinks=[memory_sink], store=None, console=False)
    with span_tree.span("work"):
        pass
    span_tree.flush()
    assert ["default"] == [record.namespace for record in memory_sink.spans]
    assert "SPANTREE_NAMESPACE ignored" in capsys.readouterr().err


def test_stats_does_not_wait_for_a_busy_sink(tmp_path: Path) -> None:
    """stats() answers while the Parquet sink is inside a (hanging) write holding its lock."""
    sink = ParquetSink(str(tmp_path / "store"), spool_dir=str(tmp_path / "spool"))
    span_tree.configure(sinks=[sink], store=None, console=False, jsonl=False)
    with span_tree.span("work"):
        pass
    assert span_tree.flush()
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with sink._lock:  # what a write to a hanging store does
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    held.wait(5)
    answers: list[dict[str, object]] = []
    asker = threading.Thread(target=lambda: answers.append(span_tree.stats()))
    asker.start()
    asker.join(10)  # generous: it must not wait for the lock at all
    finished = not asker.is_alive()
    release.set()
    holder.join()
    asker.join()
    assert finished
    assert 1 == answers[0]["sinks"][0]["written_spans"]  # type: ignore[index]


def test_losses_are_reported_once_per_interval(capsys: pytest.CaptureFixture[str]) -> None:
    """Dropped spans print one line; more drops within a minute print nothing more."""
    processor = BatchProcessor([], max_queue_size=0)
    processor.on_end(object())
    processor.report_losses(force=False)
    processor.on_end(object())
    processor.report_losses(force=False)
    lines = capsys.readouterr().err.splitlines()
    assert [
        "span_tree: 1 spans not stored so far (1 dropped (queue full or after shutdown));"
        " see span_tree.stats()"
    ] == lines
    processor.report_losses(force=True)
    assert "span_tree: 2 spans not stored" in capsys.readouterr().err
    processor.shutdown(1)


def test_nothing_lost_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """No line about losses when nothing was dropped or lost."""
    processor = BatchProcessor([lambda: MemorySink()])
    processor.report_losses(force=True)
    processor.shutdown(1)
    assert "" == capsys.readouterr().err


def test_namespace_rule_is_shared_with_api_keys() -> None:
    """A namespace configure() refuses, an API key cannot be created for either."""
    from span_tree.receiver._keys import validate_namespace

    for name in ("x" * 129, ".hidden", "a b"):
        with pytest.raises(ValueError):
            _config.check_namespace_name(name)
        with pytest.raises(ValueError):
            validate_namespace(name)
    assert "ok.name-1" == validate_namespace("ok.name-1")


class _LoudSink(MemorySink):
    """A sink whose error quotes a huge payload (as a UnicodeEncodeError of a batch does)."""

    def export(self, batch: object) -> None:
        raise ValueError("x" * 400_000)


def test_sink_error_messages_are_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    """A failing sink prints one short line and keeps a short last_error, not the payload."""
    span_tree.configure(sinks=[_LoudSink()], store=None, console=False, jsonl=False)
    with span_tree.span("work"):
        pass
    span_tree.flush()
    err = capsys.readouterr().err
    sink_stats = span_tree.stats()["sinks"][0]
    assert 1 == sink_stats["failed_spans"]
    assert len(err) < 500, len(err)
    assert len(sink_stats["last_error"]) < 400


def _modes(root: Path) -> tuple[set[int], set[int]]:
    """The permission bits of every file and every directory under ``root``."""
    files: set[int] = set()
    directories: set[int] = set()
    for path in root.rglob("*"):
        (directories if path.is_dir() else files).add(path.stat().st_mode & 0o777)
    return files, directories


def test_store_spool_and_key_files_are_owner_only(tmp_path: Path) -> None:
    """Span files, spooled files and API key files are 0600 in 0700 directories."""
    from span_tree.receiver import key_store
    from span_tree.sinks.http import HttpSink
    from span_tree.testing import capture_spans

    with capture_spans() as spans, span_tree.span("kept"):
        pass
    store = tmp_path / "store"
    sink = ParquetSink(str(store), spool_dir=str(tmp_path / "spool"))
    sink.export(list(spans))
    assert sink.force_flush(10)
    sink.shutdown()
    (tmp_path / "blocker").write_text("a file where the store's directory should be")
    blocked = ParquetSink(
        str(tmp_path / "blocker" / "store"), spool_dir=str(tmp_path / "pspool"), retries=1
    )
    blocked.export(list(spans))
    blocked.force_flush(5)
    blocked.shutdown()
    key_store(str(store)).create("team")
    http = HttpSink(
        "http://127.0.0.1:9", api_key="k", spool_dir=str(tmp_path / "hspool"), max_retries=0
    )
    http.export(list(spans))
    http.shutdown()
    for root in ("store/spans", "store/keys", "pspool", "hspool"):
        files, directories = _modes(tmp_path / root)
        assert ({0o600}, True) == (files, directories <= {0o700}), root
