"""Translating the DuckDB view definitions to Spark SQL, so they stay written once.

``sqlglot`` transpiles DuckDB SQL to Spark SQL; this module parses each view with it and
rewrites, before generation, the constructs whose plain transpilation would run on Spark
but answer differently (or not run at all). Each rewrite is generic (it matches a
construct, not a view) and keeps DuckDB's meaning:

- ``QUALIFY`` over ``*`` / ``t.*``: older Spark has no ``QUALIFY``, and sqlglot's rewrite
  to a filtered subquery would leak its helper column through the star, so the star is
  expanded to the relation's known columns first.
- ``list[i]`` (1-based, negative counts from the end, out of range is NULL) becomes
  ``try_element_at(list, i)``, which has exactly those rules (sqlglot only shifts
  literal indexes, and turns ``[-1]`` into ``[-2]``).
- ``regexp_replace(s, p, r, 'g')``: RE2 writes group references ``\\1``, Java ``$1``;
  the replacement is rewritten. Without ``'g'`` DuckDB replaces only the first match,
  which Spark cannot do: that is refused.
- ``unnest(list)`` in a select list becomes ``explode(list)``; with ``max_depth := 2``
  over a list of structs (one column per field), ``inline(list)``.
- ``list_concat`` treats a NULL list as empty; Spark's ``concat`` returns NULL.
- ``quantile_cont(x, p)`` becomes ``percentile(x, p)``: both exact, linear interpolation.
- ``arg_max(a, v)`` / ``arg_min`` skip rows where ``a`` is NULL; Spark's ``max_by`` does not.
- ``a / b``: DuckDB gives ±inf (NaN for 0/0) when ``b`` is 0; Spark NULL or an error.
- ``len(x)`` of a list or map column is ``size`` in Spark (``length`` is for strings).
- ``SEMI`` / ``ANTI JOIN ... USING (c)`` becomes ``ON l.c = r.c``: Spark moves a
  ``USING`` column first in ``l.*``, which would misalign a ``UNION ALL``.
- ``UNION`` in a recursive CTE becomes ``UNION ALL`` (all Spark accepts): the same rows
  unless the walk meets a cycle, where Spark stops at its recursion limit with an error.
- ``CREATE OR REPLACE VIEW`` becomes ``CREATE OR REPLACE TEMPORARY VIEW``.

Anything sqlglot cannot generate for Spark raises ``TranslationError`` instead of a
warning, so an untranslatable view fails at registration, never with wrong answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ErrorLevel, SqlglotError

# relation name -> its (column, Spark type string) pairs, in order
Relations = Mapping[str, Sequence[tuple[str, str]]]


class TranslationError(ValueError):
    """A DuckDB view construct has no faithful Spark translation."""


class _DuckDBAsWritten(DuckDB):
    """DuckDB, but list subscripts parsed as written (1-based): sqlglot's parser would
    shift only the indexes it can type as integers, and ``_element_at`` needs them all
    alike."""

    INDEX_OFFSET = 0


def to_spark_sql(duckdb_sql: str, *, relations: Relations) -> str:
    """Translate one DuckDB statement (a view definition) to Spark SQL.

    Args:
        duckdb_sql: one statement in DuckDB's dialect.
        relations: the columns and Spark types of the relations the statement may read
            (root views and views registered before it); used to expand ``*`` under
            ``QUALIFY`` and to tell list ``len`` from string ``len``.

    Returns:
        The statement in Spark's dialect.

    Raises:
        TranslationError: the statement uses a construct with no faithful translation.
    """
    try:
        statements = sqlglot.parse(duckdb_sql, read=_DuckDBAsWritten)
    except SqlglotError as error:
        raise TranslationError(f"cannot parse DuckDB SQL: {error}") from None
    # A comment after the statement's semicolon parses as a statement of its own.
    found = [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]
    if len(found) != 1:
        raise TranslationError("expected exactly one statement")
    tree = found[0]
    known = {name.lower(): list(columns) for name, columns in relations.items()}
    for select in list(tree.find_all(exp.Select)):
        _semi_joins_on(select)
    for with_ in tree.find_all(exp.With):
        if with_.args.get("recursive"):
            _recursive_union_all(with_)
    for cte in list(tree.find_all(exp.CTE)):  # outer ones first, each before its readers
        # AS MATERIALIZED (DuckDB: evaluate once) has no Spark syntax; the rows are the same.
        cte.set("materialized", None)
        query = cte.this
        if isinstance(query, exp.Select):
            if query.args.get("qualify"):
                _expand_stars(query, known)
            columns = _select_columns(query, known)
            if columns is not None:
                known[cte.alias_or_name.lower()] = columns
    for select in list(tree.find_all(exp.Select)):
        if select.args.get("qualify"):
            _expand_stars(select, known)
    # Children first (reversed pre-order), so a rewritten node holds rewritten children.
    for node in reversed(list(tree.dfs())):
        rewritten = _rewrite(node, known)
        if rewritten is not node:
            node.replace(rewritten)
    if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "VIEW":
        properties = tree.args.get("properties") or exp.Properties(expressions=[])
        if not any(isinstance(p, exp.TemporaryProperty) for p in properties.expressions):
            properties.append("expressions", exp.TemporaryProperty())
        tree.set("properties", properties)
    try:
        return tree.sql(dialect="spark", pretty=True, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as error:
        raise TranslationError(f"no Spark translation: {error}") from None


def _rewrite(node: exp.Expr, known: dict[str, list[tuple[str, str]]]) -> exp.Expr:
    if isinstance(node, exp.Bracket):
        return _element_at(node)
    if isinstance(node, exp.RegexpReplace):
        return _regexp_replace(node)
    if isinstance(node, exp.Explode):
        return _explode(node, known)
    if isinstance(node, exp.ArrayConcat) and not node.args.get("null_propagation"):
        empty = exp.Array(expressions=[])
        parts = [node.this, *node.expressions]
        return exp.Anonymous(
            this="CONCAT",
            expressions=[exp.Coalesce(this=p, expressions=[empty.copy()]) for p in parts],
        )
    if isinstance(node, exp.PercentileCont) and node.args.get("expression") is not None:
        return exp.Anonymous(this="PERCENTILE", expressions=[node.this, node.expression])
    if isinstance(node, exp.ArgMax | exp.ArgMin) and not _never_null(node.this):
        value = node.this
        ordering = exp.If(
            this=exp.Is(this=value.copy(), expression=exp.Null()),
            true=exp.Null(),
            false=node.expression,
        )
        return type(node)(this=value, expression=ordering)
    if isinstance(node, exp.Div):
        return _division(node)
    if isinstance(node, exp.Length) and _is_collection(node.this, known):
        column = node.this
        return exp.If(
            this=exp.Is(this=column.copy(), expression=exp.Null()),
            true=exp.Null(),
            false=exp.Anonymous(this="SIZE", expressions=[column]),
        )
    return node


def _never_null(node: exp.Expr) -> bool:
    return isinstance(node, exp.Struct | exp.Array | exp.Literal)


def _element_at(node: exp.Bracket) -> exp.Expr:
    """``x[i]`` (DuckDB: 1-based, negative from the end) as ``try_element_at(x, i)``."""
    if len(node.expressions) != 1:
        raise TranslationError(f"unsupported subscript: {node.sql('duckdb')}")
    index = node.expressions[0]
    if isinstance(index, exp.Slice):
        raise TranslationError(f"list slices have no Spark translation: {node.sql('duckdb')}")
    if isinstance(index, exp.Literal) and index.is_string:
        return node  # a map key or struct field: the same in Spark
    return exp.Anonymous(this="TRY_ELEMENT_AT", expressions=[node.this, index])


def _regexp_replace(node: exp.RegexpReplace) -> exp.Expr:
    modifiers = node.args.get("modifiers")
    flags = modifiers.name if isinstance(modifiers, exp.Literal) else ""
    if modifiers is not None and not isinstance(modifiers, exp.Literal):
        raise TranslationError("regexp_replace options must be a literal")
    if "g" not in flags:
        raise TranslationError(
            "regexp_replace without 'g' replaces only the first match, which Spark cannot"
            f" do: {node.sql('duckdb')}"
        )
    if set(flags) - {"g", "i"}:
        raise TranslationError(f"unsupported regexp_replace options {flags!r}")
    pattern = node.expression
    if "i" in flags:
        pattern = exp.DPipe(this=exp.Literal.string("(?i)"), expression=pattern)
    replacement = node.args["replacement"]
    if not (isinstance(replacement, exp.Literal) and replacement.is_string):
        raise TranslationError("regexp_replace replacement must be a string literal")
    return exp.RegexpReplace(
        this=node.this,
        expression=pattern,
        replacement=exp.Literal.string(java_replacement(replacement.name)),
    )


def java_replacement(re2: str) -> str:
    """An RE2 replacement (``\\1`` group references) as a Java one (``$1``)."""
    out = []
    chars = iter(re2)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            if following.isdigit():
                out.append("$" + following)
            elif following == "\\":
                out.append("\\\\")
            else:
                out.append(following)
        elif char == "$":
            out.append("\\$")
        else:
            out.append(char)
    return "".join(out)


def _explode(node: exp.Explode, known: dict[str, list[tuple[str, str]]]) -> exp.Expr:
    """DuckDB ``unnest(list)`` in a select list: ``max_depth := 1`` (the default) is
    Spark's ``explode``; ``max_depth := 2`` over a list of structs, one column per struct
    field, is Spark's ``inline``."""
    depth = "1"
    for option in node.expressions:
        name = option.this.name if isinstance(option, exp.PropertyEQ) else ""
        value = option.expression if isinstance(option, exp.PropertyEQ) else None
        if name != "max_depth" or not isinstance(value, exp.Literal):
            raise TranslationError(f"unsupported unnest option: {option.sql('duckdb')}")
        depth = value.name
    if depth == "1":
        return exp.Explode(this=node.this)
    kind = _column_type(node.this, known) or ""
    if depth == "2" and kind.startswith("array<struct<"):
        return exp.Anonymous(this="INLINE", expressions=[node.this])
    raise TranslationError(
        f"unnest with max_depth := {depth} of a {kind or 'value of unknown type'}"
        f" has no Spark translation: {node.sql('duckdb')}"
    )


def _division(node: exp.Div) -> exp.Expr:
    """``a / b`` with DuckDB's zero divisor (±inf, NaN for 0/0) instead of Spark's NULL or
    ANSI error: ``a * inf`` gives exactly those values."""
    divisor = node.expression
    infinity = exp.Cast(this=exp.Literal.string("Infinity"), to=exp.DataType.build("DOUBLE"))
    return exp.If(
        this=exp.EQ(this=divisor.copy(), expression=exp.Literal.number(0)),
        true=exp.Mul(this=exp.Paren(this=node.this.copy()), expression=infinity),
        false=exp.Div(this=node.this, expression=divisor),
    )


def _is_collection(node: exp.Expr, known: dict[str, list[tuple[str, str]]]) -> bool:
    """Whether ``node`` is an array or map column (the only way ``len`` differs from a
    string length)."""
    return (_column_type(node, known) or "").startswith(("array<", "map<"))


def _column_type(node: exp.Expr, known: dict[str, list[tuple[str, str]]]) -> str | None:
    """The Spark type of column ``node`` in a relation the statement reads, if known."""
    if not isinstance(node, exp.Column):
        return None
    statement = node.find_ancestor(exp.Create) or node.root()
    read = {table.name.lower() for table in statement.find_all(exp.Table)}
    for name in sorted(read):
        for column, kind in known.get(name, []):
            if column == node.name:
                return kind
    return None


def _expand_stars(select: exp.Select, known: dict[str, list[tuple[str, str]]]) -> None:
    """Replace ``*`` / ``t.*`` of a ``QUALIFY`` select by the relation's columns."""
    sources = _sources(select)
    expanded: list[exp.Expr] = []
    changed = False
    for projection in select.expressions:
        star_table = _star_table(projection)
        if star_table is None:
            expanded.append(projection)
            continue
        if star_table == "":
            if len(sources) != 1:
                raise TranslationError("QUALIFY over * of several relations: name one")
            alias, relation = next(iter(sources.items()))
        else:
            alias = star_table
            relation = sources.get(alias, "")
        columns = known.get(relation)
        if columns is None:
            raise TranslationError(
                f"QUALIFY over {projection.sql('duckdb')}: columns of {relation or alias!r}"
                " unknown (select them by name)"
            )
        expanded.extend(exp.column(name, table=star_table or None) for name, _ in columns)
        changed = True
    if changed:
        select.set("expressions", expanded)


def _semi_joins_on(select: exp.Select) -> None:
    """``SEMI``/``ANTI JOIN r USING (c, ...)`` as ``ON l.c = r.c AND ...`` (same rows: such
    joins output only the left side's columns, and NULL keys match in neither form)."""
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None or not isinstance(from_.this, exp.Table):
        return
    left = from_.this.alias_or_name
    for join in select.args.get("joins") or []:
        kind = str(join.args.get("kind") or "").upper()
        if kind not in {"SEMI", "ANTI"}:
            return  # past an output-adding join the left side is no longer one relation
        using = join.args.get("using")
        if not using:
            continue
        right = join.this.alias_or_name
        conditions = [
            exp.EQ(this=exp.column(c.name, table=left), expression=exp.column(c.name, table=right))
            for c in using
        ]
        join.set("using", None)
        join.set("on", exp.and_(*conditions))


def _recursive_union_all(with_: exp.With) -> None:
    """``UNION`` in a recursive CTE as ``UNION ALL`` (Spark accepts only the latter).

    The same rows whenever the walk produces no row twice; on a cycle DuckDB's ``UNION``
    ends the walk, while Spark stops at its recursion limit with an error.
    """
    for cte in with_.expressions:
        query = cte.this
        if isinstance(query, exp.Union) and query.args.get("distinct"):
            references = {table.name.lower() for table in query.find_all(exp.Table)}
            if cte.alias_or_name.lower() in references:
                query.set("distinct", False)


def _select_columns(
    select: exp.Select, known: dict[str, list[tuple[str, str]]]
) -> list[tuple[str, str]] | None:
    """The output columns of ``select`` (types where a star brings them), or ``None``."""
    try:
        sources = _sources(select)
    except TranslationError:  # a subquery source: its columns are not known here
        sources = {}
    columns: list[tuple[str, str]] = []
    for projection in select.expressions:
        star_table = _star_table(projection)
        if star_table is None:
            if not projection.alias_or_name:
                return None
            columns.append((projection.alias_or_name, ""))
            continue
        if star_table == "" and len(sources) != 1:
            return None
        relation = next(iter(sources.values())) if star_table == "" else sources.get(star_table)
        if relation is None or relation not in known:
            return None
        columns.extend(known[relation])
    return columns


def _star_table(projection: exp.Expr) -> str | None:
    """``''`` for ``*``, the qualifier for ``t.*``, ``None`` for other projections."""
    if isinstance(projection, exp.Star):
        return ""
    if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
        return projection.table
    return None


def _sources(select: exp.Select) -> dict[str, str]:
    """alias (or name) -> relation name of the tables whose columns ``select`` outputs
    (semi and anti joins add none)."""
    tables = []
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is not None:
        tables.append(from_.this)
    for join in select.args.get("joins") or []:
        if str(join.args.get("kind") or "").upper() in {"SEMI", "ANTI"}:
            continue
        tables.append(join.this)
    sources: dict[str, str] = {}
    for table in tables:
        if not isinstance(table, exp.Table):
            raise TranslationError("QUALIFY over * of a subquery: select its columns by name")
        sources[table.alias_or_name.lower()] = table.name.lower()
    return sources
