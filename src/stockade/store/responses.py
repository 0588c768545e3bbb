"""SQL for stored responses: one row per response, its body sealed, until its expiry."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from stockade.store.tables import responses


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    deployment: str
    previous_response_id: str | None
    created_at: float
    expires_at: float
    data: bytes  # sealed


class ResponseStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def insert(self, row: StoredResponse) -> None:
        with self.engine.begin() as connection:
            connection.execute(responses.insert().values(
                id=row.id, deployment=row.deployment, previous_response_id=row.previous_response_id,
                created_at=row.created_at, expires_at=row.expires_at, data=row.data,
            ))

    def get(self, response_id: str, now: float) -> StoredResponse | None:
        """The response, unless it has expired (the purge may not have run yet)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(responses).where(responses.c.id == response_id, responses.c.expires_at > now)
            ).first()
        return None if row is None else StoredResponse(**row._asdict())

    def chain(self, response_id: str, now: float, longest: int) -> list[StoredResponse] | None:
        """The response and those before it, oldest first, at most ``longest`` of them; None if
        one of them is missing or expired (the chain cannot be rebuilt without it)."""
        found: list[StoredResponse] = []
        with self.engine.connect() as connection:
            following: str | None = response_id
            while following is not None and len(found) < longest:
                row = connection.execute(
                    sa.select(responses).where(responses.c.id == following, responses.c.expires_at > now)
                ).first()
                if row is None:
                    return None
                found.append(StoredResponse(**row._asdict()))
                following = row.previous_response_id
        found.reverse()
        return found

    def delete(self, response_id: str) -> bool:
        with self.engine.begin() as connection:
            return connection.execute(responses.delete().where(responses.c.id == response_id)).rowcount > 0

    def delete_expired(self, now: float) -> int:
        with self.engine.begin() as connection:
            return connection.execute(responses.delete().where(responses.c.expires_at <= now)).rowcount
