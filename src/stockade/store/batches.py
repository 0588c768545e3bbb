"""SQL for batch jobs: the ``batches`` rows, and their lines in ``batch_lines``, which replicas
claim under a lease.

A line is claimed with ``UPDATE … RETURNING`` over ``SELECT … FOR UPDATE SKIP LOCKED LIMIT n``:
on PostgreSQL concurrent claimers skip each other's rows, on SQLite (which has no row locks and
ignores FOR UPDATE) the write lock serialises them. Each claim has an id of its own, and a
line's result is written only under the claim that holds it, so a line whose lease ran out and
was claimed again elsewhere is never written twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import sqlalchemy as sa

from stockade.store.paging import page_rows
from stockade.store.records import BatchRecord
from stockade.store.tables import batch_lines, batches, deployments

# Batch statuses (Azure's).
VALIDATING = "validating"
FAILED = "failed"
IN_PROGRESS = "in_progress"
FINALIZING = "finalizing"
COMPLETED = "completed"
EXPIRED = "expired"
CANCELLING = "cancelling"
CANCELLED = "cancelled"
# Batches whose tokens count against their deployment's enqueued-token quota.
UNFINISHED = (VALIDATING, IN_PROGRESS, FINALIZING, CANCELLING)

# Line states. A line that ends without running (expired, cancelled) keeps no result: its error
# line is written when the batch's files are.
PENDING = "pending"
RUNNING = "running"
LINE_COMPLETED = "completed"
LINE_FAILED = "failed"
LINE_EXPIRED = "expired"
LINE_CANCELLED = "cancelled"
NOT_RUN = (LINE_EXPIRED, LINE_CANCELLED)

INSERT_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Line:
    """A batch input line as stored: its request sealed."""

    line: int  # 0-based position in the input file
    custom_id: str
    request: bytes


@dataclass(frozen=True, slots=True)
class ClaimedLine:
    batch_id: str
    line: int
    custom_id: str
    request: bytes  # sealed
    claim: str


@dataclass(frozen=True, slots=True)
class LineResult:
    batch_id: str
    line: int
    state: str  # LINE_COMPLETED or LINE_FAILED
    result: bytes  # the sealed output or error line


@dataclass(frozen=True, slots=True)
class LineCounts:
    completed: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class Stored:
    """A finished line as the batch's files show it."""

    custom_id: str
    state: str
    result: bytes | None  # sealed; None for lines that never ran


class BatchStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- batches --------------------------------------------------------------------------------

    def insert(self, record: BatchRecord, quota: int) -> int | None:
        """Insert ``record`` if its deployment's unfinished batches, with it, hold at most
        ``quota`` tokens; otherwise insert nothing and return what the others hold."""
        with self.engine.begin() as connection:
            # Inserting first takes SQLite's write lock; on PostgreSQL the deployment's row lock
            # serialises creates on one deployment, and the sum below then sees every committed one.
            connection.execute(batches.insert().values(**dataclasses.asdict(record)))
            connection.execute(
                sa.select(deployments.c.name)
                .where(deployments.c.name == record.deployment)
                .with_for_update()
            )
            held = int(connection.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(batches.c.reserved_tokens), 0)).where(
                    batches.c.deployment == record.deployment, batches.c.status.in_(UNFINISHED)
                )
            ) or 0)
            if held > quota:
                connection.rollback()
                return held - record.reserved_tokens
        return None

    def get(self, batch_id: str) -> BatchRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(batches).where(batches.c.id == batch_id)).first()
        return BatchRecord(**row._mapping) if row else None

    def page(self, limit: int, after: str | None) -> tuple[list[BatchRecord], bool]:
        """A page of batches, newest first, and whether more follow; ``after`` is the last id of
        the page before (one that names no batch starts from the newest)."""
        with self.engine.connect() as connection:
            rows, more = page_rows(connection, batches, sa.select(batches), limit, after, newest_first=True)
        return [BatchRecord(**row._mapping) for row in rows], more

    def counts(self, batch_ids: Collection[str]) -> dict[str, LineCounts]:
        """Each batch's completed and failed lines."""
        query = (
            sa.select(batch_lines.c.batch_id, batch_lines.c.state, sa.func.count())
            .where(
                batch_lines.c.batch_id.in_(batch_ids),
                batch_lines.c.state.in_((LINE_COMPLETED, LINE_FAILED)),
            )
            .group_by(batch_lines.c.batch_id, batch_lines.c.state)
        )
        found: dict[str, dict[str, int]] = {}
        with self.engine.connect() as connection:
            for batch_id, state, count in connection.execute(query):
                found.setdefault(batch_id, {})[state] = count
        return {
            batch_id: LineCounts(states.get(LINE_COMPLETED, 0), states.get(LINE_FAILED, 0))
            for batch_id, states in found.items()
        }

    def active(self) -> list[tuple[BatchRecord, int]]:
        """The batches not yet in a final status, each with its lines still to run (pending or
        running), oldest first."""
        unfinished = (
            sa.select(batch_lines.c.batch_id, sa.func.count().label("left"))
            .where(batch_lines.c.state.in_((PENDING, RUNNING)))
            .group_by(batch_lines.c.batch_id)
            .subquery()
        )
        query = (
            sa.select(batches, sa.func.coalesce(unfinished.c.left, 0).label("lines_left"))
            .outerjoin(unfinished, unfinished.c.batch_id == batches.c.id)
            .where(batches.c.status.in_(UNFINISHED))
            .order_by(batches.c.created_at, batches.c.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            (BatchRecord(**{column.name: row._mapping[column] for column in batches.c}), row.lines_left)
            for row in rows
        ]

    def transition(self, batch_id: str, from_statuses: Collection[str], **values: object) -> bool:
        """Change the batch (its status, timestamps, files) if its status is one of
        ``from_statuses``; whether it was. Replicas racing on one change: one wins."""
        with self.engine.begin() as connection:
            updated = connection.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.status.in_(from_statuses))
                .values(**values)
            )
        return bool(updated.rowcount)

    def expand(self, batch_id: str, lines: Iterable[Line], now: float) -> bool:
        """Store a validating batch's lines and set it in progress, in one transaction; False (and
        nothing stored) if it is no longer validating (another replica did it, or it was
        cancelled)."""
        with self.engine.begin() as connection:
            # The status first: a replica that loses the race inserts nothing.
            started = connection.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.status == VALIDATING)
                .values(status=IN_PROGRESS, in_progress_at=now)
            )
            if not started.rowcount:
                connection.rollback()
                return False
            total = 0
            for page in _pages(lines):
                connection.execute(
                    batch_lines.insert(),
                    [
                        {"batch_id": batch_id, "line": line.line, "custom_id": line.custom_id,
                         "request": line.request, "state": PENDING}
                        for line in page
                    ],
                )
                total += len(page)
            connection.execute(batches.update().where(batches.c.id == batch_id).values(total=total))
        return True

    # -- lines ----------------------------------------------------------------------------------

    def claim(
        self, claim: str, now: float, lease_until: float, limit: int, excluded: Collection[str] = ()
    ) -> list[ClaimedLine]:
        """Claim up to ``limit`` lines of batches in progress, oldest batches first: pending lines,
        and running ones whose lease ran out (their replica stopped). ``excluded`` names
        deployments whose lines must wait."""
        candidates = (
            sa.select(batch_lines.c.batch_id, batch_lines.c.line)
            .join(batches, batches.c.id == batch_lines.c.batch_id)
            .where(
                batches.c.status == IN_PROGRESS,
                sa.or_(
                    batch_lines.c.state == PENDING,
                    sa.and_(batch_lines.c.state == RUNNING, batch_lines.c.lease_until < now),
                ),
            )
            .order_by(batches.c.created_at, batch_lines.c.batch_id, batch_lines.c.line)
            .limit(limit)
            .with_for_update(skip_locked=True, of=batch_lines)
        )
        if excluded:
            candidates = candidates.where(batches.c.deployment.not_in(excluded))
        claiming = (
            batch_lines.update()
            .where(sa.tuple_(batch_lines.c.batch_id, batch_lines.c.line).in_(candidates))
            .values(state=RUNNING, claim=claim, lease_until=lease_until)
            .returning(batch_lines.c.batch_id, batch_lines.c.line, batch_lines.c.custom_id,
                       batch_lines.c.request)
        )
        with self.engine.begin() as connection:
            rows = connection.execute(claiming).all()
        return sorted(
            (ClaimedLine(row.batch_id, row.line, row.custom_id, row.request, claim) for row in rows),
            key=lambda line: (line.batch_id, line.line),
        )

    def renew(self, claims: Collection[str], lease_until: float) -> None:
        """Extend the leases of the running lines these claims hold."""
        if not claims:
            return
        with self.engine.begin() as connection:
            connection.execute(
                batch_lines.update()
                .where(batch_lines.c.claim.in_(claims), batch_lines.c.state == RUNNING)
                .values(lease_until=lease_until)
            )

    def finish(self, claimed: Sequence[tuple[str, LineResult]]) -> None:
        """Write results, each under its claim: one whose line is no longer held by that claim
        (reclaimed elsewhere, expired or cancelled meanwhile) is dropped."""
        self._under_claims(
            {"state": sa.bindparam("k_state"), "result": sa.bindparam("k_result"), "lease_until": None},
            [{"k_batch": r.batch_id, "k_line": r.line, "k_claim": claim, "k_state": r.state,
              "k_result": r.result} for claim, r in claimed],
        )

    def release(self, lines: Sequence[ClaimedLine]) -> None:
        """Give claimed lines back, to run later (their deployment is out of capacity now)."""
        self._under_claims(
            {"state": PENDING, "claim": None, "lease_until": None},
            [{"k_batch": x.batch_id, "k_line": x.line, "k_claim": x.claim} for x in lines],
        )

    def _under_claims(self, values: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        """Change running lines, each only while ``k_claim`` still holds it, in one transaction."""
        if not lines:
            return
        statement = (
            batch_lines.update()
            .where(
                batch_lines.c.batch_id == sa.bindparam("k_batch"),
                batch_lines.c.line == sa.bindparam("k_line"),
                batch_lines.c.claim == sa.bindparam("k_claim"),
                batch_lines.c.state == RUNNING,
            )
            .values(**values)
        )
        with self.engine.begin() as connection:
            connection.execute(statement, lines)

    def expire(self, batch_id: str, now: float) -> bool:
        """At the end of the completion window: the lines not yet finished are expired and the
        batch goes on to its files, in one transaction; False if it was not in progress."""
        with self.engine.begin() as connection:
            moved = connection.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.status == IN_PROGRESS)
                .values(status=FINALIZING, finalizing_at=now, expired_at=now)
            )
            if not moved.rowcount:
                connection.rollback()
                return False
            connection.execute(
                batch_lines.update()
                .where(batch_lines.c.batch_id == batch_id, batch_lines.c.state.in_((PENDING, RUNNING)))
                .values(state=LINE_EXPIRED, claim=None, lease_until=None)
            )
        return True

    def cancel_lines(self, batch_id: str, now: float) -> int:
        """Cancel a cancelling batch's pending lines, and its running ones whose replica stopped;
        returns how many lines are still running (they finish first)."""
        with self.engine.begin() as connection:
            connection.execute(
                batch_lines.update()
                .where(
                    batch_lines.c.batch_id == batch_id,
                    sa.or_(
                        batch_lines.c.state == PENDING,
                        sa.and_(batch_lines.c.state == RUNNING, batch_lines.c.lease_until < now),
                    ),
                )
                .values(state=LINE_CANCELLED, claim=None, lease_until=None)
            )
            return int(connection.scalar(
                sa.select(sa.func.count()).select_from(batch_lines).where(
                    batch_lines.c.batch_id == batch_id, batch_lines.c.state == RUNNING
                )
            ) or 0)

    def finished(self, batch_id: str, states: Collection[str]) -> Iterator[Stored]:
        """The batch's lines in these states, in input order, read a page at a time."""
        query = (
            sa.select(batch_lines.c.custom_id, batch_lines.c.state, batch_lines.c.result)
            .where(batch_lines.c.batch_id == batch_id, batch_lines.c.state.in_(states))
            .order_by(batch_lines.c.line)
        )
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=INSERT_PAGE).execute(query):
                yield Stored(row.custom_id, row.state, row.result)

    def has_lines(self, batch_id: str, states: Collection[str]) -> bool:
        with self.engine.connect() as connection:
            return connection.scalar(
                sa.select(batch_lines.c.line)
                .where(batch_lines.c.batch_id == batch_id, batch_lines.c.state.in_(states))
                .limit(1)
            ) is not None


def _pages(lines: Iterable[Line]) -> Iterator[list[Line]]:
    iterator = iter(lines)
    while page := list(islice(iterator, INSERT_PAGE)):
        yield page
