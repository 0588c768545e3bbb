"""Cursor pagination as OpenAI's lists have it (``after`` = the last id of the page before), over
(created_at, id): a keyset, so a page costs the same however deep it is."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa


def page_rows(
    connection: sa.Connection,
    table: sa.Table,
    query: sa.Select[tuple[object, ...]],
    limit: int,
    after: str | None,
    *,
    newest_first: bool,
) -> tuple[Sequence[sa.Row[tuple[object, ...]]], bool]:
    """The page's rows of ``query`` (a select of ``table``), and whether more follow; an ``after``
    that names no row starts from the first."""
    order = (table.c.created_at, table.c.id)
    if after is not None:
        cursor = connection.execute(sa.select(*order).where(table.c.id == after)).first()
        if cursor is not None:
            key, at = sa.tuple_(*order), sa.tuple_(*cursor)
            query = query.where(key < at if newest_first else key > at)
    query = query.order_by(*(column.desc() if newest_first else column.asc() for column in order))
    rows = connection.execute(query.limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit
