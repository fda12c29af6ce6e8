"""``spantree tui``: open the terminal UI on a store; ``spantree web``: the same app in a
browser (textual-serve)."""

from __future__ import annotations

import ipaddress
import shlex
import sys
from contextvars import ContextVar
from typing import Any

import typer

from span_tree._commands._common import OPTIONS_HELP, fail, parse_storage_options, store_errors

STORE_HELP = "Store path or fsspec URL (default: SPANTREE_STORE or ~/.spantree)."
RANGE_HELP = "First time range of the span names screen: 15m, 1h, 24h, 7d, all."


def _check_range(time_range: str) -> None:
    from span_tree.tui._source import TIME_RANGES

    if time_range not in dict(TIME_RANGES):
        raise typer.BadParameter(
            "use one of " + ", ".join(label for label, _ in TIME_RANGES), param_hint="--range"
        )


def tui(
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    namespace: str | None = typer.Option(
        None, "--namespace", "-n", help="Open this namespace directly (default: the last used)."
    ),
    time_range: str = typer.Option("24h", "--range", "-r", help=RANGE_HELP),
    storage_options: str | None = typer.Option(None, "--storage-options", help=OPTIONS_HELP),
    only_namespace: str | None = typer.Option(
        None,
        "--only-namespace",
        help="Read this namespace and nothing else: no picker, no trace lookups elsewhere.",
    ),
) -> None:
    """Browse a store in the terminal: span names, traces, spans, error groups."""
    from span_tree._config import default_store
    from span_tree.tui import SpanTreeApp, StoreSource

    _check_range(time_range)
    options = parse_storage_options(storage_options)
    if only_namespace and namespace and namespace != only_namespace:
        raise typer.BadParameter(
            f"cannot open {namespace!r} when reading only {only_namespace!r}",
            param_hint="--namespace",
        )
    source = StoreSource.from_url(
        store or default_store(), storage_options=options, only_namespace=only_namespace
    )
    SpanTreeApp(source, namespace=namespace or only_namespace, time_range=time_range).run()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The cookie that keeps a browser signed in after it opened ``/?key=...`` once.
KEY_COOKIE = "spantree_key"
# The namespace of the key of the request being handled (aiohttp runs a request's
# middleware and handler in one task): the TUI it starts reads that namespace only.
_KEY_NAMESPACE: ContextVar[str | None] = ContextVar("spantree_web_key_namespace", default=None)


def web(
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    namespace: str | None = typer.Option(
        None, "--namespace", "-n", help="Open this namespace directly (default: the last used)."
    ),
    time_range: str = typer.Option("24h", "--range", "-r", help=RANGE_HELP),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on. Any address but loopback requires an API key.",
    ),
    port: int = typer.Option(8000, "--port", help="TCP port to listen on."),
    storage_options: str | None = typer.Option(None, "--storage-options", help=OPTIONS_HELP),
) -> None:
    """Serve the TUI to a browser: each page opened runs `spantree tui` on the store.

    On loopback (the default) anyone on this machine may open it. On any other address
    each browser must first open /?key=API_KEY with a key of `spantree keys create`
    (the receiver's keys; revoked keys stop working within seconds), and sees the key's
    namespace only.
    """
    from span_tree._config import default_store

    _check_range(time_range)
    try:
        import textual_serve  # noqa: F401
    except ImportError:
        raise fail("spantree web needs textual-serve: pip install 'span-tree[web]'") from None
    url = store or default_store()
    parse_storage_options(storage_options)  # a bad value is refused here, not per page
    keys = None
    if not is_loopback(host):
        keys = _key_store(url, storage_options)
    command = [sys.executable, "-m", "span_tree.cli", "tui", "--store", url]
    command += ["--range", time_range] + (["--namespace", namespace] if namespace else [])
    if storage_options:
        command += ["--storage-options", storage_options]
    server = _server(command, host=host, port=port, keys=keys)
    where = f"http://{host}:{port}/"
    if keys is None:
        typer.echo(f"Serving the span-tree TUI of {url} on {where} (loopback only)", err=True)
    else:
        typer.echo(
            f"Serving the span-tree TUI of {url} on {where}: open {where}?key=API_KEY with a"
            " key of `spantree keys create` (any other request gets 401)",
            err=True,
        )
    server.serve()


def _key_store(url: str, storage_options: str | None) -> Any:
    """The store's receiver keys; a store without any active key is an error."""
    from span_tree.receiver import key_store

    with store_errors(f"cannot read the keys of store {url}"):
        keys = key_store(url, storage_options=parse_storage_options(storage_options))
        active = [info for info in keys.list_keys() if not info.revoked_at]
    if not active:
        raise fail(
            f"serving on a non-loopback address needs an API key, and store {url} has none:"
            f" create one with `spantree keys create --store {url} -n NAMESPACE`"
        )
    return keys


def _server(command: list[str], *, host: str, port: int, keys: Any) -> Any:
    """A textual-serve ``Server`` running ``command``; with ``keys``, every request needs
    a valid key (``?key=`` once, then the cookie it sets), and the TUI a page starts
    reads only the namespace of its key."""
    from aiohttp import web as aiohttp_web
    from textual_serve.server import Server

    class TuiServer(Server):
        @property
        def command(self) -> str:
            """The command a new page runs: scoped to its key's namespace, if any."""
            namespace = _KEY_NAMESPACE.get()
            scope = ["--only-namespace", namespace] if namespace else []
            return shlex.join(command + scope)

        @command.setter
        def command(self, value: str) -> None:
            """Ignored: ``Server.__init__`` sets it; the property builds it per page."""

        async def _make_app(self) -> aiohttp_web.Application:
            app = await super()._make_app()
            if keys is not None:
                app.middlewares.append(require_key)
            return app

        async def handle_index(self, request: aiohttp_web.Request) -> Any:
            # Links and the websocket URL point where the browser came from (the
            # listening address may be 0.0.0.0).
            self.public_url = f"{request.scheme}://{request.host}"
            return await super().handle_index(request)

        async def on_startup(self, app: aiohttp_web.Application) -> None:
            """No banner: ``spantree web`` printed where it listens."""

    @aiohttp_web.middleware
    async def require_key(request: aiohttp_web.Request, handler: Any) -> Any:
        given = request.query.get("key")
        key = given or request.cookies.get(KEY_COOKIE)
        namespace = keys.namespace_of(key)
        if namespace is None:
            return aiohttp_web.Response(
                status=401, text="spantree web: open this page with ?key=API_KEY\n"
            )
        _KEY_NAMESPACE.set(namespace)
        response = await handler(request)
        if given and not response.prepared:
            response.set_cookie(KEY_COOKIE, given, httponly=True, samesite="Strict")
        return response

    return TuiServer(shlex.join(command), host=host, port=port, title="span-tree")


def register(app: typer.Typer) -> None:
    """Add the ``tui`` and ``web`` commands to ``app``."""
    app.command("tui")(tui)
    app.command("web")(web)
