"""The version of the contracts as a package (the `villagecounsel-contracts` wheel, the npm package of the
JSON Schemas and AsyncAPI document, the AsyncAPI `info.version`).

It follows the schema version: the major number is `SCHEMA_VERSION` (the `:vN` of every `ce_dataschema`),
so an integrator pinning `~=1.x` / `^1.x` reads every record of v1. The minor number rises with every
backward-compatible change within it (an optional field, a widened enum or bound, a new event type), the
patch number with corrections that change no schema's meaning (documentation, descriptions).
"""

from __future__ import annotations

CONTRACTS_VERSION = "1.3.0"
