"""Keyset pages of records: newest stored first, keyed on (created_at, id).

A page ends where the next begins: the cursor holds the creation time and id of the page's last
record, and the next page reads the records strictly before it in that order, through the index
on (owner, created_at, id). Unlike offsets, a record stored or removed between two requests
never shifts a page, and reading page 1,000 costs what reading page 1 costs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

Position = tuple[dt.datetime, uuid.UUID]
INVALID_CURSOR = "Invalid cursor."
# [0-9], not \d: a Python \d also matches non-ASCII digits ("٣"), which we never write.
_OUR_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(\+00)?")


def cursor_encode(created_at: str, record_id: str) -> str:
    """The opaque cursor after a record: its creation time (as stored) and its id."""
    return base64.urlsafe_b64encode(f"{created_at}|{record_id}".encode()).decode("ascii")


def cursor_decode(cursor: str) -> Position:
    """The position a cursor names; ValueError for anything that is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError) as error:
        raise ValueError("not base64 text") from error
    created, separator, record_id = text.partition("|")
    # Only the times we write: UTC as the database prints it (SQLite keeps it without an offset).
    # Another offset could leave the years a date holds once converted (year 1 at +05:00).
    moment = parse_datetime(created) if separator and _OUR_TIME.fullmatch(created) else None
    if moment is None:
        raise ValueError("not a time of ours")
    return moment.replace(tzinfo=dt.UTC), uuid.UUID(record_id)


class KeysetPagination(BasePagination):
    """`{"results": [...], "next": url-or-null}`, `limit` 1-200 (default 50), `cursor` opaque."""

    default_limit = 50  # at most 200: the query's serializer (ListQuery) holds the bounds

    def position(self, cursor: str | None) -> Position | None:
        """The position to read after, or a 400 naming `cursor` for one we did not write."""
        if not cursor:
            return None
        try:
            return cursor_decode(cursor)
        except ValueError:
            raise exceptions.ValidationError({"cursor": [INVALID_CURSOR]}) from None

    def response(self, request: Request, results: list[Any], next_after: tuple[str, str] | None) -> Response:
        """The page; `next_after` is the (created_at, id) of its last row when more rows follow."""
        link = None
        if next_after is not None:
            link = replace_query_param(request.build_absolute_uri(), "cursor", cursor_encode(*next_after))
        return Response({"results": results, "next": link})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {"results": schema, "next": {"type": "string", "format": "uri", "nullable": True}},
        }
