"""Running an import of history: check the whole file, then — only when no row has a problem — seal the
personal fields (the same key store as every record) and publish in batches with intake's publisher.

All or nothing: nothing is published while any row has an error, and a dry run lists every error. Once
publishing has begun, a Kafka outage that outlasts the retries stops the import part-way; running the
same import again is harmless (every row keeps its id: what is stored already is a duplicate).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from contracts.envelope import to_kafka_record
from plumbing.auth import Principal
from plumbing.logs import get_logger
from plumbing.personal import PersonalDataErased
from services.intake.imports import (
    FileFormat,
    ImportCheck,
    RowError,
    batches,
    check_file,
    erased_errors,
    import_rows,
    table_rows,
)
from services.intake.publisher import NotStored, Publisher
from services.intake.sealing import Keystore, KeystoreUnavailable

log = get_logger(__name__)

OpenFile = Callable[[], AbstractContextManager[IO[bytes]]]
Progress = Callable[[int, int, float], None]  # (published, total, seconds since the start)


@dataclass
class ImportOutcome:
    check: ImportCheck
    dry_run: bool
    published: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why publishing stopped before the end; None when it did not

    @property
    def status(self) -> str:
        if self.check.errors:
            return "invalid"
        if self.dry_run:
            return "valid"
        return "incomplete" if self.stopped else "imported"

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "status": self.status,
            "dry_run": self.dry_run,
            "rows": self.check.rows,
            "by_type": dict(sorted(self.check.by_type.items())),
            "published": self.published,
            "errors": [error.as_json() for error in self.check.errors],
        }
        if self.stopped:
            found["stopped"] = self.stopped
        return found


@dataclass
class ImportRun:
    keystore: Keystore
    publisher: Publisher
    batch_size: int = 5000
    attempts: int = 5
    retry_seconds: float = 2.0
    progress: Progress | None = None
    _started: float = field(default=0.0, init=False)

    async def run(
        self,
        open_file: OpenFile,
        file_format: FileFormat,
        principal: Principal,
        now: datetime,
        clock_skew: timedelta,
        *,
        dry_run: bool,
    ) -> ImportOutcome:
        """Check every row (first pass); unless a dry run or a problem, publish them (second pass)."""
        self._started = time.monotonic()
        with open_file() as file:
            check = await asyncio.to_thread(check_file, file, file_format, principal, now, clock_skew)
        if not check.errors and check.personal_ids:
            erased = await self.keystore.erased_among(list(check.personal_ids))
            check.errors.extend(erased_errors(check, erased))
        outcome = ImportOutcome(check, dry_run)
        log.info(
            "import_checked",
            importer=principal.subject,
            region=principal.region_code,
            rows=check.rows,
            errors=len(check.errors),
            rules=sorted({error.rule for error in check.errors})[:20],
            dry_run=dry_run,
        )
        if check.errors or dry_run:
            outcome.seconds = time.monotonic() - self._started
            return outcome
        if self.progress is not None:  # the check is done: publishing begins
            self.progress(0, check.rows, time.monotonic() - self._started)
        with open_file() as file:
            again = ImportCheck()
            rows = import_rows(table_rows(file, file_format), principal, now, clock_skew, again)
            for batch in batches(rows, self.batch_size):
                stopped = await self._publish(batch_events=[row.event for row in batch])
                if stopped is not None:
                    outcome.stopped = stopped
                    break
                outcome.published += len(batch)
                if self.progress is not None:
                    self.progress(outcome.published, check.rows, time.monotonic() - self._started)
        if again.errors and outcome.stopped is None:  # the file changed between the two passes
            outcome.stopped = "the file changed while it was imported: " + str(again.errors[0])
        outcome.seconds = time.monotonic() - self._started
        log.info(
            "import_published",
            importer=principal.subject,
            region=principal.region_code,
            published=outcome.published,
            rows=check.rows,
            complete=outcome.stopped is None,
            seconds=round(outcome.seconds, 1),
        )
        return outcome

    async def _publish(self, batch_events: list[Any]) -> str | None:
        try:
            sealed = await self.keystore.seal(batch_events)
        except PersonalDataErased as erased:  # erased after the check
            return f"the personal data of {erased.key_id} was erased while importing"
        except KeystoreUnavailable:
            return (
                "the key store for personal data did not answer: the import stopped part-way; run the "
                "same import again (what is stored already is recognised by its id)"
            )
        pending = [to_kafka_record(event) for event in sealed]
        for attempt in range(self.attempts):
            results = await self.publisher.publish_all(pending)
            pending = [
                record
                for record, result in zip(pending, results, strict=True)
                if isinstance(result, NotStored)
            ]
            if not pending:
                return None
            log.warning("import_batch_not_stored", records=len(pending), attempt=attempt + 1)
            await asyncio.sleep(self.retry_seconds * (attempt + 1))
        return (
            "Kafka did not store every record: the import stopped part-way; run the same import again "
            "(what is stored already is recognised by its id)"
        )


def summary_lines(outcome: ImportOutcome, limit: int = 200) -> list[str]:
    """What the command line prints at the end: the counts, then the errors (at most `limit`)."""
    lines = [f"{outcome.status}: {outcome.check.rows} rows, {outcome.published} published"]
    lines += [f"  {event_type}: {count}" for event_type, count in sorted(outcome.check.by_type.items())]
    shown: list[RowError] = outcome.check.errors[:limit]
    lines += [f"error {error}" for error in shown]
    if len(outcome.check.errors) > limit:
        lines.append(
            f"... and {len(outcome.check.errors) - limit} more errors (--errors-json FILE lists all)"
        )
    if outcome.stopped:
        lines.append(f"stopped: {outcome.stopped}")
    return lines
