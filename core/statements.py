"""Fixed SELECT statements for the vendor API's hot path, written as literal SQL.

Every API request reads its access token with the app, grant, person and key row, and a list
request reads one page of records. Through the ORM, compiling those statements cost more than
running them (docs/performance.md), so each is a `Select`: literal SQL whose column list is
written once per database from the models' own metadata, whose values are converted by the
fields' own converters (as the ORM converts them), and whose rows become model instances or
mappings without a query compiler. The callers own the SQL text (consent.oauth, the store's
selectors); this module knows no model of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


def _concrete(model: type[Model], attname: str) -> Field[Any, Any]:
    for field in model._meta.concrete_fields:
        if field.attname == attname:
            return field
    raise ValueError(f"{model.__name__} has no column {attname!r}")


def _column(field: Field[Any, Any]) -> str:
    if field.column is None:
        raise ValueError(f"{field} has no column")
    return field.column


def _in_model_order(model: type[Model], attnames: tuple[str, ...]) -> tuple[str, ...]:
    for name in attnames:
        _concrete(model, name)
    return tuple(f.attname for f in model._meta.concrete_fields if f.attname in attnames)


@dataclass(frozen=True)
class Source:
    """The columns of one model in a statement: its alias in the SQL text and the attnames loaded.

    Columns not named stay deferred on the instances built from them, as with QuerySet.only.
    """

    model: type[Model]
    alias: str
    attnames: tuple[str, ...]


@dataclass(frozen=True)
class _Layout:
    sql: str
    # Per source: where its columns start and stop in a row.
    slices: tuple[tuple[Source, int, int], ...]
    # (position in the row, the column's converters, the column expression they are given)
    conversions: tuple[tuple[int, tuple[Converter, ...], Any], ...]


class Select:
    """`SELECT <the sources' columns>[, <extra>] <tail>`, with `{alias}` in tail naming a table.

    `extra` are raw SQL expressions returned as the database gives them (no conversion). The
    text is built once per database alias; values are always parameters (`%s`), given as the
    database takes them (a field's `get_db_prep_value`).
    """

    def __init__(self, *sources: Source, tail: str, extra: Sequence[str] = ()) -> None:
        # Columns in the model's order, as Model.from_db expects them.
        self.sources = tuple(replace(s, attnames=_in_model_order(s.model, s.attnames)) for s in sources)
        self.tail, self.extra = tail, tuple(extra)
        self._layouts: dict[str, _Layout] = {}

    def _layout(self, using: str) -> _Layout:
        layout = self._layouts.get(using)
        if layout is None:
            layout = self._layouts[using] = self._build(connections[using])
        return layout

    def _build(self, connection: BaseDatabaseWrapper) -> _Layout:
        quote = connection.ops.quote_name
        selected: list[str] = []
        slices = []
        conversions = []
        for source in self.sources:
            start = len(selected)
            for name in source.attnames:
                field = _concrete(source.model, name)
                col = field.get_col(source.alias)
                chain = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if chain:
                    conversions.append((len(selected), tuple(chain), col))
                selected.append(f"{quote(source.alias)}.{quote(_column(field))}")
            slices.append((source, start, len(selected)))
        tables = {s.alias: f"{quote(s.model._meta.db_table)} {quote(s.alias)}" for s in self.sources}
        # Only quoted names from the models' metadata and the caller's fixed text: values are parameters.
        sql = f"SELECT {', '.join([*selected, *self.extra])} {self.tail.format(**tables)}"
        return _Layout(sql, tuple(slices), tuple(conversions))

    def rows(self, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS) -> list[tuple[Any, ...]]:
        """Run the statement; return its rows with every source column converted."""
        layout = self._layout(using)
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(layout.sql, params)
            raw = cursor.fetchall()
        if not layout.conversions:
            return raw
        converted = []
        for row in raw:
            values = list(row)
            for position, chain, col in layout.conversions:
                for convert in chain:
                    values[position] = convert(values[position], col, connection)
            converted.append(tuple(values))
        return converted

    def instances(
        self, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS
    ) -> dict[str, Model | None] | None:
        """The first row as a model instance per alias (None where a LEFT JOIN found no row)."""
        rows = self.rows(params, using=using)
        if not rows:
            return None
        row = rows[0]
        found: dict[str, Model | None] = {}
        for source, start, stop in self._layout(using).slices:
            part = row[start:stop]
            pk = source.model._meta.pk
            missing = pk is not None and part[source.attnames.index(pk.attname)] is None
            found[source.alias] = None if missing else source.model.from_db(using, source.attnames, part)
        return found

    def mappings(self, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS) -> list[dict[str, Any]]:
        """Every row as a mapping of attname (and extra expression) to value; one source only."""
        names = (*self.sources[0].attnames, *self.extra)
        return [dict(zip(names, row, strict=True)) for row in self.rows(params, using=using)]
