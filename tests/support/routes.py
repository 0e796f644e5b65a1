"""Every APIRoute of an app. FastAPI (≥ 0.16x) keeps an included router as one entry of `app.routes`
(its `original_router` holds the routes), so walking `app.routes` alone misses every route a service
includes from its routes module."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


def _walk(routes: Iterable[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from _walk(router.routes)


def api_routes(app: FastAPI) -> list[APIRoute]:
    return list(_walk(app.routes))
