"""Errors raised by the analytics layer: each carries a message meant for a person."""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot be read or a query over it failed; ``str()`` is the message."""


class StoreNotFound(StoreError):
    """The store path or URL does not exist."""


class QueryError(StoreError):
    """A SQL query is invalid: syntax error, unknown view or column, bad parameter."""


class TraceNotFound(StoreError):
    """No trace matches the given id or prefix."""

    def __init__(self, trace_id: str) -> None:
        super().__init__(f"no trace with id {trace_id!r} in this store")
        self.trace_id = trace_id


class AmbiguousTraceId(StoreError):
    """A trace id prefix matches more than one trace; ``candidates`` lists some."""

    def __init__(self, prefix: str, candidates: list[str], *, more: bool = False) -> None:
        shown = ", ".join(candidates[:3])
        count = f"{len(candidates)}{' or more' if more else ''}"
        super().__init__(
            f"trace id prefix {prefix!r} matches {count} traces ({shown}, ...);"
            " give more characters"
        )
        self.prefix = prefix
        self.candidates = candidates
