"""The ``spantree`` command line (typer). Each group of commands lives in its own
module under ``span_tree/_commands`` and registers itself on ``app``."""

from __future__ import annotations

import importlib

import typer

import span_tree

app = typer.Typer(
    name="spantree",
    help="Query, browse and maintain span-tree stores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that add commands; a missing one (a part not built yet) is skipped.
COMMAND_MODULES = (
    "span_tree._commands.store",
    "span_tree._commands.query",
    "span_tree._commands.receiver",
    "span_tree._commands.tui",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spantree {span_tree.__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Query, browse and maintain span-tree stores."""


for _module in COMMAND_MODULES:
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as error:
        if error.name != _module:
            raise


def main() -> None:
    """Console-script entry point."""
    app()
