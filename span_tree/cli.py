"""The ``spantree`` command line (typer). Each group of commands lives in its own
module under ``span_tree/_commands`` and registers itself on ``app``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

import span_tree
from span_tree._commands import query as _query
from span_tree._commands import receiver as _receiver
from span_tree._commands import store as _store
from span_tree._commands import tui as _tui

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]


def _plain_values_without_pydantic(params: Sequence[Any]) -> None:
    """Let the ``str`` and ``bool`` parameters skip typer's pydantic conversion.

    typer >= 0.2x converts each parameter's value through a pydantic ``TypeAdapter``,
    and importing pydantic for it was a fifth of a ``spantree sql`` process. click
    already hands such a parameter a ``str`` (or a flag a ``bool``): a value of the
    annotated type passes as is, anything else still goes through typer's conversion.
    With a typer whose private ``_coercion`` module is missing or shaped differently
    nothing changes (``tests/cli/test_cli_imports.py`` notices pydantic coming back).
    """
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:  # pragma: no cover - a typer without pydantic conversion
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if (
            descriptor is None
            or getattr(param, "_runtime_param", False) is not None
            or descriptor.annotation not in (str, bool)
            or descriptor.file_annotation is not None
            or descriptor.parameter_info.parser is not None
        ):
            continue
        try:
            param._runtime_param = _as_given(RuntimeParam, build_runtime_param)(
                parameter_info=descriptor.parameter_info,
                annotation=descriptor.annotation,
                descriptor=descriptor,
            )
        except Exception:  # a typer whose private shapes changed: its own conversion
            return


_AS_GIVEN: Any = None


def _as_given(base: Any, build: Any) -> Any:
    """typer's ``RuntimeParam`` keeping a value of the annotated type as click gave it."""
    global _AS_GIVEN
    if _AS_GIVEN is None:

        @dataclass(frozen=True)
        class AsGiven(base):  # type: ignore[misc]
            descriptor: Any = None

            def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
                if isinstance(value, self.annotation):
                    return value
                return build(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

        _AS_GIVEN = AsGiven
    return _AS_GIVEN


class _OneLineErrors(TyperGroup):
    """A usage error (missing option, bad value, unknown command) is one line,
    ``error: ... (see spantree CMD --help)`` and exit code 1, like every other error,
    instead of typer's boxed message and exit code 2."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _plain_values_without_pydantic(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:  # its context inherits the help option names from ctx
            _plain_values_without_pydantic(command.get_params(ctx))
        return name, command, rest

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


# The modules adding commands (each imports its heavy libraries inside its commands).
for _module in (_store, _query, _receiver, _tui):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # `python -m span_tree.cli`, as `spantree web` runs the TUI
    main()
