"""Statements for the vendor API's hottest path, written without the ORM's query compiler.

Every API request reads its token (with the app, grant, person and key row), reads a page of
records and appends a ledger entry. Through the ORM, compiling those three statements and
building model instances for them cost more than running them: a select_related token lookup
took 0.45 ms to compile and 0.16 ms to run; replacing all three was the largest single gain
in the API's throughput (docs/performance.md). The statements here are built
from the models' own metadata (tables, columns, each field's value preparation and converters),
so a renamed column or a new field needs no edit and every value converts exactly as the ORM
converts it, on every database Django supports. Only the shapes the API needs exist: equality
and range conditions, an IN list, ordering, LIMIT/OFFSET, LEFT JOINs on equal columns, and a
single-row INSERT.

`pipelined_atomic` runs such a read and write as one transaction in two round trips on
PostgreSQL instead of four.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Field, Model, QuerySet
from django.utils import timezone

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]
# (position in the row, converters, the column expression they are given)
Conversions = tuple[tuple[int, list[Converter], Any], ...]

_OPERATORS = {"exact": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "IN"}


@lru_cache(maxsize=256)
def _field(model: type[Model], attname: str) -> Field[Any, Any]:
    for field in model._meta.concrete_fields:
        if field.attname == attname or field.name == attname:
            return field
    raise ValueError(f"{model.__name__} has no column {attname!r}")


def _conversions(connection: Any, fields: Sequence[Field[Any, Any]], alias: str) -> Conversions:
    found = []
    for position, field in enumerate(fields):
        col = field.get_col(alias)
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if converters:
            found.append((position, converters, col))
    return tuple(found)


def _convert(row: Sequence[Any], conversions: Conversions, connection: Any) -> Sequence[Any]:
    if not conversions:
        return row
    values = list(row)
    for position, converters, col in conversions:
        value = values[position]
        for convert in converters:
            value = convert(value, col, connection)
        values[position] = value
    return values


# Joined reads (the token with what every request needs).


@dataclass(frozen=True)
class Table:
    """A model in a JoinedRead; `on` is (other alias, its attname, this model's attname).

    `only` names the attnames to load (the primary key always is); the others are deferred,
    so reading one costs a query of its own, as with QuerySet.only.
    """

    model: type[Model]
    alias: str
    on: tuple[str, str, str] | None = None
    only: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _JoinLayout:
    sql: str
    where: tuple[Field[Any, Any], ...]
    # Per table: where its columns start and stop in the row, the position of its primary key
    # among them, their attnames, and their conversions.
    slices: tuple[tuple[Table, int, int, int, tuple[str, ...], Conversions], ...]


class JoinedRead:
    """One row of several models joined by LEFT JOINs, found by equality on columns of the first.

    `one(values)` returns a dict of alias to model instance (None where the join found no row),
    or None when no row matches. Instances hold every column, or those their Table names in
    `only`; their relations are not linked: the caller sets what it needs, which costs no
    query. The statement is built once per database alias.
    """

    def __init__(self, *tables: Table, where: Sequence[tuple[str, str]]) -> None:
        self.tables = tables
        self.where = tuple(where)
        self._layouts: dict[str, _JoinLayout] = {}

    def _layout(self, using: str) -> _JoinLayout:
        layout = self._layouts.get(using)
        if layout is None:
            layout = self._layouts[using] = self._build(using)
        return layout

    def _build(self, using: str) -> _JoinLayout:
        connection = connections[using]
        quote = connection.ops.quote_name
        by_alias = {t.alias: t for t in self.tables}

        def column(alias: str, attname: str) -> str:
            return f"{quote(alias)}.{quote(_field(by_alias[alias].model, attname).column)}"

        columns: list[str] = []
        slices = []
        for table in self.tables:
            pk = table.model._meta.pk
            fields = [
                f
                for f in table.model._meta.concrete_fields
                if table.only is None or f is pk or f.attname in table.only
            ]
            start = len(columns)
            columns += [f"{quote(table.alias)}.{quote(f.column)}" for f in fields]
            attnames = tuple(f.attname for f in fields)
            pk_position = attnames.index(table.model._meta.pk.attname)  # type: ignore[union-attr]
            conversions = _conversions(connection, fields, table.alias)
            slices.append((table, start, len(columns), pk_position, attnames, conversions))
        first, *joined = self.tables
        # Only quoted names from the models' metadata go into the text; values are parameters.
        table_name = quote(first.model._meta.db_table)
        sql = [f"SELECT {', '.join(columns)} FROM {table_name} {quote(first.alias)}"]  # noqa: S608
        for table in joined:
            if table.on is None:
                raise ValueError(f"table {table.alias} of a JoinedRead needs a join condition")
            other, other_attname, own_attname = table.on
            sql.append(
                f"LEFT JOIN {quote(table.model._meta.db_table)} {quote(table.alias)} "
                f"ON {column(table.alias, own_attname)} = {column(other, other_attname)}"
            )
        conditions = " AND ".join(f"{column(alias, attname)} = %s" for alias, attname in self.where)
        sql.append(f"WHERE {conditions}")
        where = tuple(_field(by_alias[alias].model, attname) for alias, attname in self.where)
        return _JoinLayout(" ".join(sql), where, tuple(slices))

    def one(self, values: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS) -> dict[str, Model | None] | None:
        layout = self._layout(using)
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(
                layout.sql,
                [
                    field.get_db_prep_value(v, connection)
                    for field, v in zip(layout.where, values, strict=True)
                ],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        found: dict[str, Model | None] = {}
        for table, start, stop, pk_position, attnames, conversions in layout.slices:
            part = list(_convert(row[start:stop], conversions, connection))
            missing = part[pk_position] is None
            found[table.alias] = None if missing else table.model.from_db(using, attnames, part)
        return found


# Rows of one table (pages of records).


_DIRECTION = {True: "DESC", False: "ASC"}


@dataclass(frozen=True)
class Condition:
    """`attname lookup value`, with lookup one of exact, lt, lte, gt, gte, in."""

    attname: str
    lookup: str
    value: Any

    @property
    def keyword(self) -> str:
        """The same condition as a keyword argument of QuerySet.filter."""
        return f"{self.attname}__{self.lookup}"


@dataclass(frozen=True)
class Rows:
    """Rows of one model as dicts of some columns, filtered by conditions joined with AND.

    It answers the part of a values() queryset that DRF's CursorPagination uses: order_by,
    filter with `<column>__<lookup>` keywords, and slicing (which runs the statement).
    """

    model: type[Model]
    columns: tuple[str, ...]
    conditions: tuple[Condition, ...]
    ordering: tuple[str, ...] = ()
    using: str = DEFAULT_DB_ALIAS
    # Columns read as the database's text of them and converted only where used (TextValue):
    # paging keys, of which a cursor reads one or two rows' of a page.
    lazy: tuple[str, ...] = ()

    def queryset(self) -> QuerySet[Any]:
        """The same rows as a QuerySet of model instances, for everything but the hot path."""
        return self.model._default_manager.filter(**{c.keyword: c.value for c in self.conditions}).order_by(
            *self.ordering
        )

    def order_by(self, *fields: str) -> Rows:
        return replace(self, ordering=fields)

    def filter(self, **lookups: Any) -> Rows:
        added = []
        for keyword, value in lookups.items():
            attname, separator, lookup = keyword.rpartition("__")
            if not separator:
                attname, lookup = keyword, "exact"
            if lookup not in _OPERATORS:
                raise ValueError(f"unsupported lookup {lookup!r}")
            added.append(Condition(attname, lookup, value))
        return replace(self, conditions=self.conditions + tuple(added))

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        if not isinstance(window, slice) or window.step is not None:
            raise TypeError("Rows are read by slices without a step")
        return self._run(window.start or 0, window.stop)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._run(0, None))

    def _run(self, low: int, high: int | None) -> list[dict[str, Any]]:
        connection = connections[self.using]
        quote = connection.ops.quote_name
        table = quote(self.model._meta.db_table)
        selected, conversions = _selection(self.model, self.columns, self.lazy, self.using)
        where, params = [], []
        for condition in self.conditions:
            field = _field(self.model, condition.attname)
            operator = _OPERATORS.get(condition.lookup)
            if operator is None:
                raise ValueError(f"unsupported lookup {condition.lookup!r}")
            column = f"{table}.{quote(field.column)}"
            if condition.lookup == "in":
                values = [field.get_db_prep_value(v, connection) for v in condition.value]
                if not values:
                    return []
                where.append(f"{column} IN ({', '.join(['%s'] * len(values))})")
                params += values
            elif condition.value is None:
                if condition.lookup != "exact":
                    raise ValueError(f"{condition.keyword} cannot compare with None")
                where.append(f"{column} IS NULL")  # as the ORM reads exact=None
            elif condition.lookup == "exact" and field.get_internal_type() == "BooleanField":
                # A literal, not a parameter: PostgreSQL plans a prepared statement for any
                # parameter value, and without knowing that nearly all rows are shared=TRUE it
                # judged that plan worse and planned anew on every execution.
                where.append(f"{column} = {'TRUE' if field.to_python(condition.value) else 'FALSE'}")
            else:
                where.append(f"{column} {operator} %s")
                params.append(field.get_db_prep_value(condition.value, connection))
        # Qualified: a bare name in ORDER BY means an output column first, and a lazy column's
        # output (its text, named after the column on PostgreSQL) would sort as text.
        order = [
            f"{table}.{quote(_field(self.model, name.lstrip('-')).column)} {_DIRECTION[name[0] == '-']}"
            for name in self.ordering
        ]
        sql = [f"SELECT {selected} FROM {table}"]  # noqa: S608
        if where:
            sql.append(f"WHERE {' AND '.join(where)}")
        if order:
            sql.append(f"ORDER BY {', '.join(order)}")
        sql.append(connection.ops.limit_offset_sql(low, high))
        with connection.cursor() as cursor:
            cursor.execute(" ".join(sql), params)
            rows = cursor.fetchall()
        return [dict(zip(self.columns, _convert(row, conversions, connection), strict=True)) for row in rows]


@lru_cache(maxsize=64)
def _selection(
    model: type[Model], columns: tuple[str, ...], lazy: tuple[str, ...], using: str
) -> tuple[str, Conversions]:
    """The SELECT list of some columns of a model, and their conversions (once per shape)."""
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = [_field(model, name) for name in columns]
    selected = ", ".join(
        f"CAST({quote(f.column)} AS TEXT)" if name in lazy else quote(f.column)
        for name, f in zip(columns, fields, strict=True)
    )
    conversions = _conversions(connection, fields, model._meta.db_table)
    lazy_conversions = tuple(
        (position, [TextValue.converter(field)], None)
        for position, (name, field) in enumerate(zip(columns, fields, strict=True))
        if name in lazy
    )
    eager = tuple(c for c in conversions if columns[c[0]] not in lazy)
    return selected, tuple(sorted(eager + lazy_conversions, key=lambda c: c[0]))


class TextValue:
    """A column value kept as the database's text of it until used; str() gives the value's str.

    For a DateTimeField that is the aware datetime the ORM would give (naive text, as Django
    keeps it in SQLite, is UTC), parsed on first use instead of for every row of a page.
    """

    __slots__ = ("_field", "_text", "_value")

    def __init__(self, field: Field[Any, Any], text: str) -> None:
        self._field, self._text, self._value = field, text, None

    @classmethod
    def converter(cls, field: Field[Any, Any]) -> Converter:
        return lambda text, _expression, _connection: None if text is None else cls(field, text)

    @property
    def value(self) -> Any:
        if self._value is None:
            value = self._field.to_python(self._text)
            if isinstance(value, dt.datetime) and timezone.is_naive(value):
                value = timezone.make_aware(value, dt.UTC)
            self._value = value
        return self._value

    def __str__(self) -> str:
        return str(self.value)


# Inserts (ledger entries).


def insert(model: type[M], values: dict[str, Any], *, using: str = DEFAULT_DB_ALIAS) -> M:
    """Insert one row of model with values by attname (the others take their defaults).

    Return the instance as stored, primary key included (except inside `pipelined_atomic`,
    where a generated key is not read back and stays None). Values are prepared by each field as
    Model.save prepares them; nothing else of save runs (no signals, no pre_save), so it suits
    append-only tables whose writes go through one service.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    if pk is None:
        raise ValueError(f"{model.__name__} has no primary key")
    fields = [f for f in model._meta.concrete_fields if f is not pk or f.attname in values]
    stored = {f.attname: values[f.attname] if f.attname in values else f.get_default() for f in fields}
    params = [f.get_db_prep_save(stored[f.attname], connection) for f in fields]
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    with connection.cursor() as cursor:
        if pk.attname in stored:
            cursor.execute(sql, params)
        elif in_pipelined_atomic(using):
            # Reading the key back would cost the round trip the pipeline saves; it stays None.
            cursor.execute(sql, params)
            stored[pk.attname] = None
        elif connection.features.can_return_columns_from_insert:
            returning, _ = connection.ops.return_insert_columns([pk])
            cursor.execute(f"{sql} {returning}", params)
            stored[pk.attname] = connection.ops.fetch_returned_insert_columns(cursor, [])[0]
        else:
            cursor.execute(sql, params)
            stored[pk.attname] = connection.ops.last_insert_id(cursor, model._meta.db_table, pk.column)
    attnames = [f.attname for f in model._meta.concrete_fields]
    return model.from_db(using, attnames, [stored[name] for name in attnames])


# One transaction in two round trips (PostgreSQL).

_PIPELINED = "_vrm_pipelined_atomic"


def in_pipelined_atomic(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the connection is inside a `pipelined_atomic` block."""
    return bool(getattr(connections[using], _PIPELINED, False))


@contextmanager
def pipelined_atomic(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block as one transaction whose commit travels with its last statement.

    On PostgreSQL the block runs in psycopg's pipeline mode, where everything up to the
    pipeline's Sync message is one implicit transaction: committed at the Sync if no statement
    failed, rolled back otherwise. A statement whose rows are fetched costs one round trip;
    statements whose results are not fetched travel with the Sync. A read, then a write, cost
    two round trips where `transaction.atomic` costs four (BEGIN, read, write, COMMIT). An
    exception raised in the block rolls the whole transaction back, as `transaction.atomic` does.

    Inside the block use only plain statements: no `transaction.atomic` (psycopg refuses to
    leave autocommit in mid-pipeline), and a generated key of an insert is not read back.
    Elsewhere (SQLite, or already inside an atomic block) it is `transaction.atomic`.
    """
    connection = connections[using]
    if in_pipelined_atomic(using):  # nested: already one transaction
        yield
        return
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with transaction.atomic(using=using):
            yield
        return
    import psycopg

    connection.cursor().close()  # connect, and run a pending health check, before the pipeline
    raw = connection.connection
    if not psycopg.Pipeline.is_supported() or not raw.autocommit:
        with transaction.atomic(using=using):
            yield
        return
    setattr(connection, _PIPELINED, True)
    try:
        with connection.wrap_database_errors:
            try:
                with raw.pipeline():
                    try:
                        yield
                    except BaseException:
                        # Ends the implicit transaction, rolling it back, before the Sync could
                        # commit it. After a failed statement the server skips it (and the Sync
                        # rolls back anyway), so psycopg may refuse to queue it.
                        with suppress(psycopg.Error):
                            raw.execute("ROLLBACK", prepare=False)
                        raise
            finally:
                if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not raw.closed:
                    raw.rollback()  # never leave the connection in a transaction
    finally:
        setattr(connection, _PIPELINED, False)
