"""The ``spantree`` command line (typer). Each group of commands lives in its own
module under ``span_tree/_commands`` and registers itself on ``app``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

import span_tree

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]


class _OneLineErrors(TyperGroup):
    """A usage error (missing option, bad value, unknown command) is one line,
    ``error: ... (see spantree CMD --help)`` and exit code 1, like every other error,
    instead of typer's boxed message and exit code 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except click_errors.NoArgsIsHelpError as error:
            typer.echo(error.ctx.get_help())
            sys.exit(0)
        except click_errors.UsageError as error:
            message = " ".join(error.format_message().split()).rstrip(".")
            where = f" (see {error.ctx.command_path} --help)" if error.ctx is not None else ""
            typer.echo(f"error: {message}{where}", err=True)
            sys.exit(1)
        except click_errors.ClickException as error:
            typer.echo(f"error: {' '.join(error.format_message().split())}", err=True)
            sys.exit(1)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
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


if __name__ == "__main__":  # `python -m span_tree.cli`, as `spantree web` runs the TUI
    main()
