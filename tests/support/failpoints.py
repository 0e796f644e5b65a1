"""Crash points for tests, injected into a projection's runtime from the tests (the runtime has none of its
own: `plumbing.projection.BatchHooks` are no-ops). `VC_FAILPOINTS`, read here and only here, names them:
'mid_batch=3' stops the process (exit 86, as a `kill -9` would leave it) the 3rd time a batch is inside its
transaction; 'after_db_commit=5' the 5th time a batch committed; 'error_mid_batch' raises an error the runtime
does not expect, as a bug would.

    python -m tests.support.failpoints ledger      # the ledger service, with the failpoints of VC_FAILPOINTS
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from plumbing.projection import BatchHooks

EXIT_AT_FAILPOINT = 86


class FailpointError(Exception):
    """What an `error_…` failpoint raises: an error the projection runtime does not expect."""


@dataclass
class Failpoints(BatchHooks):
    remaining: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Failpoints:
        points = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, count = item.partition("=")
            points[name] = int(count or "1")
        return cls(points)

    @classmethod
    def from_environment(cls) -> Failpoints:
        return cls.parse(os.environ.get("VC_FAILPOINTS", ""))

    def hit(self, name: str) -> None:
        if name not in self.remaining:
            return
        self.remaining[name] -= 1
        if self.remaining[name] <= 0 and name.startswith("error_"):
            raise FailpointError(f"failpoint {name} reached")
        if self.remaining[name] <= 0:
            os._exit(EXIT_AT_FAILPOINT)

    def mid_batch(self) -> None:
        self.hit("mid_batch")
        self.hit("error_mid_batch")

    def after_commit(self) -> None:
        self.hit("after_db_commit")


def serve_with_failpoints(service: str) -> int:
    """The service as `python -m services.<service>` serves it, with the failpoints of VC_FAILPOINTS."""
    from plumbing.service import serve
    from services.assessment.app import create_app as assessment
    from services.dashboard.app import create_app as dashboard
    from services.ledger.app import create_app as ledger

    app = {"ledger": ledger, "assessment": assessment, "dashboard": dashboard}[service]()
    app.state.host.hooks = Failpoints.from_environment()
    return serve(app, app.state.settings)


if __name__ == "__main__":
    # From the module by its name, not `__main__`: the error a failpoint raises is then
    # `tests.support.failpoints.FailpointError`, whichever way this file was started.
    from tests.support.failpoints import serve_with_failpoints as serve_named

    sys.exit(serve_named(sys.argv[1]))
