"""Query commands: ``sql``, ``trace``, ``traces``, ``slow``, ``errors``, ``annotate``,
``health`` and ``demo``. They call ``span_tree.analytics.Store``; no SQL lives here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from span_tree._commands._common import (
    NAMESPACE_HELP,
    OPTIONS_HELP,
    STORE_HELP,
    fail,
    parse_storage_options,
    store_access_errors,
)

if TYPE_CHECKING:
    import polars

    from span_tree.analytics import Store

FORMAT_HELP = "Output format: table, csv, json, jsonl or parquet (parquet needs --output)."

StoreOption = typer.Option(None, "--store", "-s", help=STORE_HELP)
NamespaceOption = typer.Option(None, "--namespace", "-n", help=NAMESPACE_HELP)
StorageOptionsOption = typer.Option(None, "--storage-options", help=OPTIONS_HELP)
FormatOption = typer.Option("table", "--format", "-f", help=FORMAT_HELP)
OutputOption = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout.")
AppOption = typer.Option(None, "--app", help="Only this app.")
SinceOption = typer.Option(None, "--since", help="Only after: ISO time or age (30m, 2h, 7d).")
UntilOption = typer.Option(None, "--until", help="Only before: ISO time or age.")
TagOption = typer.Option(None, "--tag", "-t", help="Only with this tag, KEY=VALUE (repeatable).")
NameOption = typer.Option(None, "--name", help="Only spans (or trace roots) with this name.")


# Views that only serve other views; `sql --views` leaves them out.
INTERNAL_VIEWS = frozenset(
    {"span_duplicates", "annotation_versions", "error_spans", "run_candidates"}
)
SPAN_VERSIONS_HELP = (
    "span_versions: every row ever written for a span (a running span's 'started' row,"
    " then its finished one; duplicates from a replayed spool). spans keeps the newest."
)
TRACE_STATUSES = ("succeeded", "failed", "started")
GROUP_STATUSES = ("open", "crash", "silenced")


def _check_choice(option: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise fail(f"{option} must be one of {', '.join(choices)}, not {value!r}")


def _tags(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"--tag {item!r} must look like KEY=VALUE")
        tags[key] = value
    return tags


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Turn the analytics errors (and bad values, unreachable stores) into one line on
    stderr and exit 1."""
    from span_tree.analytics import StoreError

    try:
        yield
    except StoreError as error:
        raise fail(str(error)) from None
    except store_access_errors() as error:
        raise fail(str(error)) from None


@contextmanager
def _busy(message: str) -> Iterator[None]:
    """A spinner on stderr while a long query runs (only when stderr is a terminal)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(f"{message}…"):
        yield


def _open(
    store: str | None,
    namespace: str | None,
    storage_options: str | None,
    *,
    need_spans: bool = True,
) -> Store:
    from span_tree._config import default_store
    from span_tree.analytics import Store, StoreError

    options = parse_storage_options(storage_options)
    try:
        opened = Store(
            store, namespace=namespace, storage_options=options, on_problem=_warn_skipped
        )
        empty = need_spans and opened.is_empty  # a directory listing: can fail too
    except StoreError as error:
        raise fail(str(error)) from None
    except store_access_errors() as error:  # e.g. no credentials: say which store
        raise fail(f"cannot read store {store or default_store()}: {error}") from None
    if empty:
        where = f" in namespace {namespace!r}" if namespace else ""
        raise fail(
            f"no spans{where} in store {opened.url} yet (try `spantree demo --store {opened.url}`)"
        )
    return opened


def _warn_skipped(problems: list[str]) -> None:
    """One stderr line for the files the Store skipped (found when reading them)."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    typer.echo(
        f"warning: skipped {len(problems)} unreadable file(s): {problems[0]}{more}", err=True
    )


def _duration(value: Any) -> str:
    from span_tree._display import format_duration

    return "" if value is None else format_duration(int(value))


def _time(value: Any) -> str:
    # Without the year: the tables list recent things (csv/json keep ISO 8601).
    return "" if value is None else value.strftime("%m-%d %H:%M:%S")


def _percent(value: Any) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _show(
    frame: polars.DataFrame,
    *,
    fmt: str,
    output: str | None,
    title: str,
    columns: dict[str, str],
    formatters: Mapping[str, Callable[[Any], str]] | None = None,
    priority: list[str] | None = None,
    wide: tuple[str, ...] = (),
) -> None:
    """Write a helper's result: the chosen columns as a table, every column otherwise.

    ``priority`` lists the table's columns most important first: on a narrow terminal
    the last ones are left out (and a line says so).
    """
    from span_tree.analytics._formats import write_result

    priority = priority or list(columns)
    if (
        fmt == "table"
        and "namespace" not in columns
        and "namespace" in frame.columns
        and frame["namespace"].n_unique() > 1
    ):
        # Rows from several namespaces: say which is which.
        columns = {"namespace": "namespace", **columns}
        priority = [*priority[:1], "namespace", *priority[1:]]
    if fmt == "table":
        frame = frame.select([name for name in columns if name in frame.columns])
    with _clear_errors():
        write_result(
            frame.to_arrow(),
            fmt=fmt,
            output=output,
            title=title,
            formatters=formatters,
            headers=columns,
            priority=priority,
            wide=wide,
        )


def sql(
    query: str | None = typer.Argument(
        None, help="SQL over the views, e.g. 'select * from traces'."
    ),
    views: bool = typer.Option(False, "--views", help="List the views and their columns."),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help=FORMAT_HELP + " Default: table on a terminal, else csv."
    ),
    output: str | None = OutputOption,
    store: str | None = StoreOption,
    namespace: str | None = NamespaceOption,
    storage_options: str | None = StorageOptionsOption,
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="On a SQL error, show DuckDB's whole message."
    ),
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        help="duckdb, or spark: a local Spark session (needs span-tree[spark] and Java 17+).",
    ),
) -> None:
    """Run SQL over the store's views (spans, traces, span_stats, error_groups...)."""
    from span_tree.analytics import QueryError
    from span_tree.analytics._formats import write_result, write_rows

    if engine not in ("duckdb", "spark"):
        raise fail(f"--engine must be duckdb or spark, not {engine!r}")
    if not views:
        _check_one_statement(query)
    if engine == "spark" and not views:
        _spark_sql(query, fmt, output, store, namespace, storage_options)
        return
    opened = _open(store, namespace, storage_options, need_spans=not views)
    chosen = fmt or ("table" if sys.stdout.isatty() else "csv")
    if views:
        import pyarrow as pa

        with _clear_errors():
            infos = [
                (info.name, [name for name, _ in info.columns], info.description)
                for info in opened.views()
                if not info.name.startswith("_") and info.name not in INTERNAL_VIEWS
            ]
            versions = opened.arrow("DESCRIBE span_versions").column("column_name").to_pylist()
        infos.insert(0, ("span_versions", versions, SPAN_VERSIONS_HELP))
        table = pa.table(
            {
                "view": [name for name, _, _ in infos],
                "columns": [", ".join(columns) for _, columns, _ in infos],
                "description": [description for _, _, description in infos],
            }
        )
        if chosen == "table":
            table = table.select(["view", "columns"])
        with _clear_errors():
            write_result(
                table, fmt=chosen, output=output, title="views", priority=["view", "columns"]
            )
        return
    assert query is not None  # checked by _check_one_statement
    try:
        with _busy("running query"):
            if chosen in ("csv", "json", "jsonl"):
                # Rows straight from DuckDB: the text formats need no pyarrow (start-up).
                columns, types, rows = opened.rows(query)
            else:
                result = opened.arrow(query)
    except QueryError as error:
        raise fail(str(error) if verbose else _short_sql_error(str(error))) from None
    with _clear_errors():
        if chosen in ("csv", "json", "jsonl"):
            write_rows(columns, types, rows, fmt=chosen, output=output)
        else:
            write_result(result, fmt=chosen, output=output)


def _check_one_statement(query: str | None) -> None:
    """Refuse an empty query or several statements (only the last one would print)."""
    if not query or not query.strip(" \t\r\n;"):
        raise fail('give a query, e.g. spantree sql "select * from traces limit 5" (or --views)')
    if ";" not in query.rstrip(" \t\r\n;"):
        # Surely one statement: no parse, which would start DuckDB's default database
        # (~20 ms of a cold `spantree sql`) besides the Store's.
        return
    import duckdb

    try:
        count = len(duckdb.extract_statements(query))
    except duckdb.Error:
        return  # a syntax error: running it reports it with its position
    if count > 1:
        raise fail(f"give one SQL statement at a time (this text has {count})")


def _short_sql_error(message: str) -> str:
    """DuckDB's message up to its position excerpt (``LINE 1: ...`` and the caret),
    with a pointer to ``--views`` when a view name is unknown."""
    kept = []
    for line in message.splitlines():
        if not line.strip() or line.startswith("LINE "):
            break
        kept.append(line.strip())
    short = " ".join(kept) or message.strip()
    if short.startswith("Catalog Error: Table") and "does not exist" in short:
        short += " (spantree sql --views lists the views)"
    return short + (" (--verbose shows where)" if "LINE " in message else "")


def _spark_sql(
    query: str | None,
    fmt: str | None,
    output: str | None,
    store: str | None,
    namespace: str | None,
    storage_options: str | None,
) -> None:
    """``sql --engine spark``: the same views, run by a local Spark session."""
    from span_tree.analytics import spark
    from span_tree.analytics._formats import write_result

    assert query is not None  # _check_one_statement refused an empty one
    with _clear_errors(), _busy("running query on Spark"):
        spark.check_available()
        result = spark.query(
            query,
            store,
            namespace=namespace,
            storage_options=parse_storage_options(storage_options),
        )
    with _clear_errors():
        write_result(result, fmt=fmt or ("table" if sys.stdout.isatty() else "csv"), output=output)


def trace(
    trace_id: str = typer.Argument(..., help="KSUID, its 32-hex W3C form, or a unique prefix."),
    level: str = typer.Option("DEBUG", "--level", help="Hide log events below this level."),
    fmt: str = typer.Option("tree", "--format", "-f", help="tree, or json / jsonl (span records)."),
    tracebacks: bool = typer.Option(
        False, "--errors", help="Show the tracebacks of failed spans and handled errors."
    ),
    store: str | None = StoreOption,
    namespace: str | None = NamespaceOption,
    storage_options: str | None = StorageOptionsOption,
) -> None:
    """Print one trace as a tree of spans with their log lines."""
    from span_tree._record import span_to_json_dict
    from span_tree.analytics._formats import stdout_console
    from span_tree.sinks._render import render_trace

    opened = _open(store, namespace, storage_options)
    with _clear_errors():
        records = opened.trace(trace_id)
    if fmt == "tree":
        stdout_console().print(render_trace(records, min_level=level, tracebacks=tracebacks))
    elif fmt in ("json", "jsonl"):
        dicts = [span_to_json_dict(record) for record in records]
        if fmt == "json":
            typer.echo(json.dumps(dicts, ensure_ascii=False, indent=2, default=repr))
        else:
            for item in dicts:
                typer.echo(json.dumps(item, ensure_ascii=False, default=repr))
    else:
        raise fail(f"unknown format {fmt!r}: use tree, json or jsonl")


def traces(
    app: str | None = AppOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    tag: list[str] | None = TagOption,
    status: str | None = typer.Option(None, "--status", help="succeeded, failed or started."),
    name: str | None = NameOption,
    limit: int = typer.Option(20, "--limit", "-l", help="At most this many traces."),
    fmt: str = FormatOption,
    output: str | None = OutputOption,
    store: str | None = StoreOption,
    namespace: str | None = NamespaceOption,
    storage_options: str | None = StorageOptionsOption,
) -> None:
    """List recent traces, newest first."""
    _check_choice("--status", status, TRACE_STATUSES)
    opened = _open(store, namespace, storage_options)
    with _clear_errors():
        frame = opened.traces(
            app=app,
            since=since,
            until=until,
            tags=_tags(tag),
            status=status,
            name=name,
            limit=limit,
        )
    columns = {
        "start_time": "start (UTC)",
        "trace_id": "trace",
        "root_name": "name",
        "status": "status",
        "duration_us": "duration",
        "span_count": "spans",
        "error_count": "errors",
        "app": "app",
    }
    formatters = {"start_time": _time, "duration_us": _duration}
    priority = ["trace_id", "root_name", "status", "duration_us", "start_time", "error_count"]
    priority += ["span_count", "app"]
    _show(
        frame,
        fmt=fmt,
        output=output,
        title="traces",
        columns=columns,
        formatters=formatters,
        priority=priority,
        wide=("root_name",),
    )


def slow(
    app: str | None = AppOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    tag: list[str] | None = TagOption,
    name: str | None = NameOption,
    threshold_ms: float | None = typer.Option(
        None, "--over", help="Spans slower than this many ms (default: over their name's p95)."
    ),
    limit: int = typer.Option(20, "--limit", "-l", help="At most this many spans."),
    fmt: str = FormatOption,
    output: str | None = OutputOption,
    store: str | None = StoreOption,
    namespace: str | None = NamespaceOption,
    storage_options: str | None = StorageOptionsOption,
) -> None:
    """List the slowest spans: those over the p95 of their name, slowest first."""
    opened = _open(store, namespace, storage_options)
    threshold = None if threshold_ms is None else int(threshold_ms * 1000)
    with _clear_errors():
        frame = opened.slow(
            app=app,
            since=since,
            until=until,
            tags=_tags(tag),
            name=name,
            threshold_us=threshold,
            limit=limit,
        )
    columns = {
        "name": "name",
        "duration_us": "duration",
        "p95_us": "p95",
        "p95_ratio": "x p95",
        "status": "status",
        "start_time": "start (UTC)",
        "trace_id": "trace",
    }
    formatters = {
        "duration_us": _duration,
        "p95_us": _duration,
        "start_time": _time,
        "p95_ratio": lambda value: "" if value is None else f"{value:.1f}",
    }
    priority = ["name", "duration_us", "p95_ratio", "trace_id", "p95_us", "start_time", "status"]
    _show(
        frame,
        fmt=fmt,
        output=output,
        title="slow spans",
        columns=columns,
        formatters=formatters,
        priority=priority,
        wide=("name",),
    )


def errors(
    app: str | None = AppOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    tag: list[str] | None = TagOption,
    name: str | None = NameOption,
    status: str | None = typer.Option(None, "--status", help="open, crash or silenced."),
    handled: bool | None = typer.Option(
        None, "--handled/--fatal", help="Only handled (logged) or only fatal errors."
    ),
    limit: int = typer.Option(20, "--limit", "-l", help="At most this many groups."),
    fmt: str = FormatOption,
    output: str | None = OutputOption,
    store: str | None = StoreOption,
    namespace: str | None = NamespaceOption,
    storage_options: str | None = StorageOptionsOption,
) -> None:
    """List error groups (same bug, different ids = one group), most frequent first."""
    from span_tree._display import short_error_type

    _check_choice("--status", status, GROUP_STATUSES)
    opened = _open(store, namespace, storage_options)
    with _clear_errors():
        frame = opened.errors(
            app=app,
            since=since,
            until=until,
            tags=_tags(tag),
            name=name,
            status=status,
            handled=handled,
            limit=limit,
        )
    columns = {
        "fingerprint": "fingerprint",
        "trace_count": "traces",
        "count": "occurrences",
        "handled": "handled",
        "error_type": "type",
        "sample_message": "message",
        "location": "where",
        "status": "status",
        "level": "level",
        "last_seen": "last seen (UTC)",
    }
    formatters = {
        "last_seen": _time,
        "handled": lambda value: "handled" if value else "fatal",
        "error_type": lambda value: short_error_type(str(value)),
    }
    priority = ["fingerprint", "trace_count", "error_type", "sample_message", "handled"]
    priority += ["location", "count", "last_seen", "status", "level"]
    _show(
        frame,
        fmt=fmt,
        output=output,
        title="error groups",
        columns=columns,
        formatters=formatters,
        priority=priority,
        wide=("sample_message",),
    )


def annotate(
    fingerprint: str = typer.Argument(..., help="The error group's fingerprint (spantree errors)."),
    status: str = typer.Option("open", "--status", help="crash, silenced or open."),
    level: str = typer.Option("WARN", "--level", help="OK, WARN or ALERT."),
    note: str = typer.Option("", "--note", help="Free text: why, ticket, owner..."),
    clear: bool = typer.Option(
        False,
        "--clear",
        help="Remove the group's annotation (it is open again, at its default level).",
    ),
    force: bool = typer.Option(
        False, "--force", help="Annotate a fingerprint the store has no error for (yet)."
    ),
    store: str | None = StoreOption,
    namespace: str | None = NamespaceOption,
    storage_options: str | None = StorageOptionsOption,
) -> None:
    """Annotate an error group (the newest annotation wins; health uses the level)."""
    from span_tree.analytics._annotations import CLEARED, check_annotation, write_annotation

    with _clear_errors():
        check_annotation(fingerprint, status, level)
    opened = _open(store, namespace, storage_options, need_spans=False)
    if clear:
        if not _exists(opened, "annotations", fingerprint):
            raise fail(f"error group {fingerprint} has no annotation to clear")
        with _clear_errors():
            write_annotation(
                opened.location, fingerprint=fingerprint, status=CLEARED, level="", note=""
            )
        typer.echo(f"cleared the annotation of {fingerprint}")
        return
    if not force and not _exists(opened, "error_occurrences", fingerprint):
        raise fail(
            f"no error group with fingerprint {fingerprint!r} in store {opened.url}"
            " (see spantree errors; --force annotates it anyway)"
        )
    with _clear_errors():
        opened.annotate(fingerprint, status=status, level=level, note=note)
    typer.echo(f"annotated {fingerprint}: {status} {level}" + (f" ({note})" if note else ""))


def _exists(opened: Store, view: str, fingerprint: str) -> bool:
    """Whether ``view`` has a row with this fingerprint (an empty store has none)."""
    if view != "annotations" and opened.is_empty:
        return False
    with _clear_errors():
        found = opened.arrow(f"select 1 from {view} where fingerprint = ? limit 1", [fingerprint])
    return bool(found.num_rows > 0)


def health(
    app: str | None = AppOption,
    fmt: str = FormatOption,
    output: str | None = OutputOption,
    store: str | None = StoreOption,
    namespace: str | None = NamespaceOption,
    storage_options: str | None = StorageOptionsOption,
) -> None:
    """Show OK / WARN / ALERT per app and namespace, and why."""
    opened = _open(store, namespace, storage_options)
    with _clear_errors():
        frame = opened.health(app=app)
    columns = {
        "namespace": "namespace",
        "app": "app",
        "level": "level",
        "traces": "traces (1 day)",
        "failed": "failed",
        "error_rate": "error rate",
        "open_groups": "open groups",
        "last_seen": "last seen (UTC)",
        "reason": "why",
    }
    formatters = {"error_rate": _percent, "last_seen": _time}
    priority = ["app", "level", "reason", "error_rate", "failed", "traces", "open_groups"]
    priority += ["namespace", "last_seen"]
    _show(
        frame,
        fmt=fmt,
        output=output,
        title="health",
        columns=columns,
        formatters=formatters,
        priority=priority,
        wide=("reason",),
    )


def demo(
    store: str | None = StoreOption,
    traces_count: int = typer.Option(120, "--traces", help="Requests to simulate."),
    namespace: str = typer.Option("demo", "--namespace", "-n", help="Namespace to write to."),
) -> None:
    """Run an instrumented order service into a store, then show what it recorded."""
    from span_tree._commands.demo import run_and_report

    if traces_count < 1:
        raise fail("--traces must be at least 1")
    with _clear_errors():
        run_and_report(store=store, traces=traces_count, namespace=namespace)


def register(app: typer.Typer) -> None:
    """Add the query commands to the ``spantree`` app."""
    app.command("sql")(sql)
    app.command("trace")(trace)
    app.command("traces")(traces)
    app.command("slow")(slow)
    app.command("errors")(errors)
    app.command("annotate")(annotate)
    app.command("health")(health)
    app.command("demo")(demo)
