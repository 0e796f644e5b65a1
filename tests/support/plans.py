"""PostgreSQL's plan for a statement, as the list of its nodes (for tests that a read uses an index)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def plan_nodes(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Every node of `EXPLAIN (FORMAT JSON)` of the statement with these parameters."""
    [row] = await conn.fetch(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    found, pending = [], [json.loads(row[0])[0]["Plan"]]
    while pending:
        node = pending.pop()
        found.append(node)
        pending.extend(node.get("Plans", []))
    return found


def scans_of(plan: list[dict[str, Any]], table: str) -> list[str]:
    """The kinds of the plan's nodes that read `table` (Seq Scan, Index Scan, Bitmap Heap Scan, ...)."""
    return [node["Node Type"] for node in plan if node.get("Relation Name") == table]
