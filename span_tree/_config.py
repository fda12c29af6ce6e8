"""``configure()``: choose sinks, resource fields and behaviour; flush and shutdown.

Environment variables (``SPANTREE_*``) fill in what ``configure`` was not told; without
either, the defaults are: a rich tree on stderr plus the local Parquet
store on a terminal, one JSON line per span on stdout elsewhere, nothing under pytest.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from span_tree import _logging, _runtime, _span
from span_tree._processor import BatchProcessor, SinkFactory
from span_tree._runtime import Settings
from span_tree._sanitize import (
    DEFAULT_SCRUB_PATTERNS,
    NEVER,
    ScrubbingOptions,
    configure_scrubbing,
    key_pattern,
)
from span_tree.typing import Sink

_UNSET: Any = object()
DEFAULT_STORE = "~/.spantree"
MAX_NAMESPACE_CHARS = 128
_NAMESPACE = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")


def check_namespace_name(namespace: str) -> str:
    """Return ``namespace`` if it can name a store partition (the one rule for it).

    Raises:
        ValueError: not 1-128 characters of ``A-Z a-z 0-9 _ . -`` (and no leading ``.``).
    """
    if (
        not isinstance(namespace, str)
        or len(namespace) > MAX_NAMESPACE_CHARS
        or not _NAMESPACE.fullmatch(namespace)
    ):
        shown = repr(namespace) if len(repr(namespace)) <= 60 else repr(namespace)[:60] + "…"
        raise ValueError(
            f"invalid namespace {shown}: use 1-{MAX_NAMESPACE_CHARS} characters of "
            "A-Z a-z 0-9 _ . - (not starting with '.')"
        )
    return namespace


def _namespace_setting(namespace: str | None) -> str:
    if namespace is not None:
        return check_namespace_name(namespace)
    from_env = os.environ.get("SPANTREE_NAMESPACE")
    if not from_env:
        return "default"
    try:
        return check_namespace_name(from_env)
    except ValueError as error:
        # configure() may run on the first span of the application: never raise there.
        _report(f"span_tree: SPANTREE_NAMESPACE ignored, using 'default': {error}")
        return "default"


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _env_warning(message: str) -> None:
    """Say once (per message) that a ``SPANTREE_*`` variable was not understood."""
    import warnings

    warnings.warn(message, _span.SpanTreeWarning, stacklevel=3)


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    word = value.strip().lower()
    if word not in _TRUE + _FALSE:
        _env_warning(f"{name}={value!r} is not one of 1/0, true/false, yes/no, on/off: ignored")
        return None
    return word in _TRUE


def _env_tags() -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in os.environ.get("SPANTREE_TAGS", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            tags[key.strip()] = value.strip()
        elif item.strip():
            _env_warning(f"SPANTREE_TAGS item {item.strip()!r} is not KEY=VALUE: ignored")
    if os.environ.get("SPANTREE_ENV"):
        tags["env"] = os.environ["SPANTREE_ENV"]
    return tags


def default_store() -> str:
    """The local store: ``SPANTREE_STORE`` or ``~/.spantree``."""
    return os.environ.get("SPANTREE_STORE") or os.path.expanduser(DEFAULT_STORE)


def _under_pytest() -> bool:
    # PYTEST_CURRENT_TEST is only set while a test runs; spans opened during collection
    # (module-level code of a test file) are caught by pytest being imported.
    return "PYTEST_CURRENT_TEST" in os.environ or "_pytest" in sys.modules


def configure(
    *,
    namespace: str | None = None,
    app: str | None = None,
    app_version: str | None = None,
    tags: Mapping[str, Any] | None = None,
    console: bool | None = None,
    jsonl: bool | None = None,
    store: str | None = _UNSET,
    storage_options: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    otlp_endpoint: str | None = None,
    sinks: Sequence[Sink] | None = None,
    patch_threads: bool = True,
    capture_logging: bool = True,
    log_level: int | None = logging.INFO,
    scrub_keys: Iterable[str] | None = None,
    scrub: ScrubbingOptions | bool = True,
    max_queue_size: int = 100_000,
    batch_size: int = 512,
    schedule_delay: float = 0.5,
    on_full: str = "block",
    exit_timeout: float = 5.0,
    enabled: bool = True,
) -> None:
    """Configure tracing for this process. Call once at start-up; calling again replaces it.

    Args:
        namespace: the store partition spans go to (``SPANTREE_NAMESPACE``, "default"):
            1-128 characters of ``A-Z a-z 0-9 _ . -``, not starting with ``.``.
        app, app_version: identify the application on every span (``SPANTREE_APP``,
            ``SPANTREE_APP_VERSION``; app defaults to the script's name).
        tags: trace tags copied onto every span (``SPANTREE_TAGS="k=v,k2=v2"``,
            ``SPANTREE_ENV`` sets ``env``).
        console: draw each finished trace as a tree on stderr (default: when stderr is
            a terminal; ``SPANTREE_CONSOLE``).
        jsonl: one JSON line per span on stdout (default: when not on a terminal and no
            store or endpoint is set; ``SPANTREE_JSONL``).
        store: Parquet store path or fsspec URL; ``None`` means no Parquet. Default:
            ``SPANTREE_STORE``, else the local store on a terminal.
        storage_options: fsspec options for ``store`` (credentials, endpoint_url...).
        endpoint, api_key: send spans to a receiver (``SPANTREE_ENDPOINT``,
            ``SPANTREE_API_KEY``).
        otlp_endpoint: export OTLP/HTTP to an OpenTelemetry backend (base or
            ``/v1/traces`` URL; default: the ``OTEL_EXPORTER_OTLP_*`` variables; needs
            the ``span-tree[otel]`` extra; see ``span_tree.otel.OtlpSink``).
        sinks: extra sinks (anything with ``export``/``force_flush``/``shutdown``).
        patch_threads: make threads and ``ThreadPoolExecutor.submit`` inherit the span.
        capture_logging: turn ``logging`` records inside spans into span events.
        log_level: when the application has not configured logging, lower the root
            logger to this level so records at it are captured (None: leave it).
        scrub_keys: attribute/tag key fragments whose values are replaced by
            ``[scrubbed]`` (case-insensitive); replaces the default list (passwords,
            tokens, keys, auth, sessions, cookies...; see ``DEFAULT_SCRUB_PATTERNS``).
        scrub: ``ScrubbingOptions(extra_patterns=, extra_value_patterns=, callback=)``
            to extend scrubbing (key and value patterns, a callback that may keep a
            match); ``False`` turns all scrubbing off. See the README, "Secrets".
        max_queue_size, batch_size, schedule_delay: processor tuning.
        on_full: when ``max_queue_size`` spans wait for the worker, ``"block"`` (default)
            makes the producing thread wait until the worker takes a batch (a sink call
            stuck for over 2 s never hangs the application: spans are then dropped and
            counted); ``"drop"`` drops at once.
        exit_timeout: seconds allowed to flush at exit or on SIGTERM.
        enabled: False turns recording off (spans become no-ops).

    Raises:
        ValueError: ``namespace`` is not a valid partition name.
    """
    env_tags = _env_tags()
    settings = Settings(
        namespace=_namespace_setting(namespace),
        app=app or os.environ.get("SPANTREE_APP") or _script_name(),
        app_version=app_version or os.environ.get("SPANTREE_APP_VERSION") or "",
        tags={**env_tags, **{str(k): str(v) for k, v in (tags or {}).items()}},
        scrub_pattern=_scrub_keys(scrub_keys, scrub),
        exit_timeout=exit_timeout,
    )
    factories = _sink_factories(
        console=console,
        jsonl=jsonl,
        store=store,
        storage_options=storage_options,
        endpoint=endpoint,
        api_key=api_key,
        otlp_endpoint=otlp_endpoint,
        sinks=sinks,
        namespace=settings.namespace,
    )
    new_processor = BatchProcessor(
        factories,
        max_queue_size=max_queue_size,
        batch_size=batch_size,
        schedule_delay=schedule_delay,
        on_full=on_full,
        convert_columns=_span.to_columns,
        on_worker_start=_span.suppress_tracing,
    )
    old = _runtime.state.processor
    _runtime.state.settings = settings
    _runtime.state.processor = new_processor
    _runtime.state.enabled = enabled
    if old is not None:
        old.shutdown(timeout=exit_timeout)

    from span_tree import _threads

    if patch_threads:
        _threads.patch_threads()
    else:
        _threads.unpatch_threads()
    if capture_logging:
        _logging.install_handler(log_level)
        _runtime.state.on_new_trace = _logging.reattach_handler
    else:
        _logging.uninstall_handler()
        _runtime.state.on_new_trace = None
    _install_exit_hooks()


def _scrub_keys(keys: Iterable[str] | None, scrub: ScrubbingOptions | bool) -> re.Pattern[str]:
    """The key pattern of the settings; sets the value rules for every scrubber."""
    if scrub is False:
        configure_scrubbing(None, values=False)
        return NEVER
    options = scrub if isinstance(scrub, ScrubbingOptions) else None
    for pattern in [
        *(options.extra_patterns if options else ()),
        *(options.extra_value_patterns if options else ()),
    ]:
        re.compile(pattern)  # a bad pattern is the caller's error, now (re.error)
    configure_scrubbing(options)
    patterns = list(DEFAULT_SCRUB_PATTERNS) if keys is None else [re.escape(key) for key in keys]
    if options is not None:
        patterns += list(options.extra_patterns)
    return key_pattern(patterns)


def _script_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    return os.path.splitext(os.path.basename(path))[0] or "python"


def _sink_factories(
    *,
    console: bool | None,
    jsonl: bool | None,
    store: str | None,
    storage_options: Mapping[str, Any] | None,
    endpoint: str | None,
    api_key: str | None,
    otlp_endpoint: str | None = None,
    sinks: Sequence[Sink] | None,
    namespace: str,
) -> list[SinkFactory]:
    from span_tree.otel._env import otlp_from_environment

    otlp = otlp_endpoint is not None or otlp_from_environment()
    interactive = _stderr_is_terminal()
    testing = _under_pytest()
    endpoint = endpoint or os.environ.get("SPANTREE_ENDPOINT") or None
    if store is _UNSET:
        env_store = os.environ.get("SPANTREE_STORE")
        if env_store is not None:
            store = None if env_store.lower() in ("", "none", "off") else env_store
        else:
            store = default_store() if interactive and not testing else None
    if console is None:
        console = _env_flag("SPANTREE_CONSOLE")
        if console is None:
            console = interactive and not testing
    if jsonl is None:
        jsonl = _env_flag("SPANTREE_JSONL")
        if jsonl is None:
            jsonl = not interactive and not testing and store is None and endpoint is None
            jsonl = jsonl and not otlp
    factories: list[SinkFactory] = []
    if console:
        factories.append(_lazy("span_tree.sinks.console", "ConsoleSink"))
    if jsonl:
        factories.append(_lazy("span_tree.sinks.jsonl", "JsonlSink"))
    if store:
        options = dict(storage_options or {})
        factories.append(
            _lazy("span_tree.sinks.parquet", "ParquetSink", store, storage_options=options)
        )
    if endpoint:
        key = api_key or os.environ.get("SPANTREE_API_KEY") or ""
        factories.append(_lazy("span_tree.sinks.http", "HttpSink", endpoint, api_key=key))
    if otlp:
        factories.append(_lazy("span_tree.otel._sink", "OtlpSink", otlp_endpoint))
    for sink in sinks or ():
        factories.append(_constant(sink))
    return factories


def _lazy(module: str, name: str, *args: Any, **kwargs: Any) -> SinkFactory:
    def build() -> Sink:
        import importlib

        sink_class = getattr(importlib.import_module(module), name)
        sink = sink_class(*args, **kwargs)
        # The sink's imports (s3fs, asyncio...) may have registered shutdown hooks of
        # their own: ours must still run before them.
        _register_early_exit_flush()
        return sink  # type: ignore[no-any-return]

    return build


def _constant(sink: Sink) -> SinkFactory:
    return lambda: sink


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# -- flushing ----------------------------------------------------------------------------


def flush(timeout: float = 5.0) -> bool:
    """Export every finished span and flush every sink.

    Returns:
        True when everything was handed to the sinks within ``timeout`` seconds.
    """
    processor = _runtime.state.processor
    return True if processor is None else processor.flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop tracing; later spans are not recorded until ``configure()``."""
    processor = _runtime.state.processor
    if processor is None:
        return True
    return processor.shutdown(_runtime.state.settings.exit_timeout if timeout is None else timeout)


def stats() -> dict[str, Any]:
    """Counters of the tracing pipeline: queued, dropped, per-sink exports and errors."""
    processor = _runtime.state.processor
    result: dict[str, Any] = processor.stats() if processor else {"queued": 0, "dropped": 0}
    result["late_events"] = _runtime.stats.late_events
    result["listener_errors"] = _runtime.stats.listener_errors
    result["internal_errors"] = _runtime.stats.internal_errors
    return result


_hooks_installed = False
# The exit's time budget: set when the first exit stage starts (monotonic deadline).
_exit_deadline: float | None = None
_early_flush_done = False
_exit_lock = threading.Lock()


def _install_exit_hooks() -> None:
    global _hooks_installed
    _register_early_exit_flush()
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_flush_at_exit)
    if threading.current_thread() is threading.main_thread():
        import signal  # here, not at import: `import span_tree` stays cheap

        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None) or callable(previous):
            signal.signal(signal.SIGTERM, _sigterm_handler(previous))


def _register_early_exit_flush() -> None:
    """Flush at the start of interpreter shutdown, while libraries still work.

    ``atexit`` runs after ``concurrent.futures`` refused new work ("cannot schedule new
    futures after interpreter shutdown"), which s3fs/botocore need for every request.
    Hooks of ``threading._register_atexit`` run earlier, last registered first; this
    one is registered again whenever a sink was built (its imports may have registered
    their own hooks meanwhile), and only its first call does anything.
    """
    import concurrent.futures.thread  # noqa: F401  # its hook must run after ours

    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return
    registered = getattr(threading, "_threading_atexits", None) or [None]
    if getattr(registered[-1], "func", None) is _flush_before_shutdown:
        return  # last registered already: it runs first
    with contextlib.suppress(RuntimeError):  # already shutting down
        register(_flush_before_shutdown)


def _flush_before_shutdown() -> None:
    # Stage 1: flush (the worker keeps running for threads that still end spans).
    _exit_stage(stop=False)


def _flush_at_exit() -> None:
    # Stage 2: flush what came since, stop, and say what could not be kept.
    _exit_stage(stop=True)


def _exit_stage(*, stop: bool) -> None:
    global _exit_deadline, _early_flush_done
    processor = _runtime.state.processor
    if processor is None:
        return
    with _exit_lock:
        if not stop:
            if _early_flush_done:
                return  # stage 1 ran already (registered more than once)
            _early_flush_done = True
        now = time.monotonic()
        if _exit_deadline is None:
            _exit_deadline = now + _runtime.state.settings.exit_timeout
        remaining = _exit_deadline - now
    try:
        unkept = processor.exit_flush(remaining, stop=stop)
        if not stop and not unkept:
            # All kept in time: non-daemon threads still running may record more, to be
            # written normally; the last stage then has a budget of its own.
            processor.end_exit()
            with _exit_lock:
                _exit_deadline = None
        if stop or unkept:
            processor.report_losses(force=True)
        if stop and unkept:
            _report(
                f"span_tree: {unkept} spans could not be written or spooled within "
                f"exit_timeout={_runtime.state.settings.exit_timeout:g}s and are lost"
            )
    except Exception as error:  # the exit of the application must go on
        _report(f"span_tree: flush at exit failed: {error!r}"[:400])


def _sigterm_handler(previous: Any) -> Callable[[int, Any], None]:
    def on_sigterm(signum: int, frame: Any) -> None:
        import signal  # imported already: the handler was installed with it

        if callable(previous):
            # The application decides whether to exit: flush, keep tracing.
            processor = _runtime.state.processor
            if processor is not None:
                with contextlib.suppress(Exception):
                    processor.exit_flush(_runtime.state.settings.exit_timeout, stop=False)
                    processor.end_exit()
            previous(signum, frame)
            return
        # The process dies now: the spans still open (the job the orchestrator stopped)
        # are recorded as failed by the signal, instead of vanishing.
        try:
            _fail_open_spans(signum, frame)
        except Exception as error:
            _report(f"span_tree: could not record the open spans: {error!r}"[:400])
        _flush_at_exit()
        # Default action: die by SIGTERM as the process would have without us.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    return on_sigterm


def _fail_open_spans(signum: int, frame: Any) -> int:
    """End every span still open in this process as failed by signal ``signum``.

    Found through the garbage collector's list of objects rather than a registry, so
    recording a span costs nothing extra for this rare moment. Innermost spans end
    first, so a root never publishes its children as merely `started`.

    Returns:
        The number of spans ended.
    """
    import gc
    import signal
    import traceback

    name = signal.Signals(signum).name
    open_spans = [
        item
        for item in gc.get_objects()
        if type(item) is _span.Span and item.start_ns and not item.end_ns
    ]
    frames = sys._current_frames()
    idents = {thread.name: thread.ident or 0 for thread in threading.enumerate()}
    here = threading.current_thread().name
    for span in sorted(open_spans, key=lambda item: item.seq, reverse=True):
        stack = frame if span.thread == here else frames.get(idents.get(span.thread, 0))
        where = "".join(traceback.format_stack(stack)) if stack is not None else ""
        message = f"the process received {name} (signal {signum}) while this span was open"
        span.error = (
            f"signal.{name}",
            message,
            f"Stack when {name} arrived (most recent call last):\n{where}"
            f"signal.{name}: {message}\n",
        )
        _span._finish(span, None, None, None)
    return len(open_spans)


def _report(message: str) -> None:
    with contextlib.suppress(Exception):
        print(message, file=sys.stderr, flush=True)


# The first span of a process that never called configure() configures from the
# environment: the runtime (a lower layer) calls this through its state.
_runtime.state.configure = configure
