"""The answers every endpoint shares: JSON bodies, ASP.NET's ProblemDetails, and 404s."""

from __future__ import annotations

import secrets
from typing import Final

import msgspec
from aiohttp import web

_PROBLEM_400: Final = "https://tools.ietf.org/html/rfc9110#section-15.5.1"


class NotFound(Exception):
    """A user id or item id that does not exist: 404."""


def json_response(body: str | bytes, status: int = 200) -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, status=status, content_type="application/json", charset="utf-8")


def encoded(value: object) -> web.Response:
    """``value`` as JSON (for documents that are not items: no escaping rules to follow)."""
    return json_response(msgspec.json.encode(value))


def problem(status: int, title: str, detail: str | None = None) -> web.Response:
    """ASP.NET's ProblemDetails ([ApiController] on a bare BadRequest()/NotFound())."""
    body: dict[str, object] = {"type": _PROBLEM_400, "title": title, "status": status}
    if detail:
        body["errors"] = {"request": [detail]}
    body["traceId"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
    return web.Response(
        body=msgspec.json.encode(body),
        status=status,
        content_type="application/problem+json",
        charset="utf-8",
    )


def not_found() -> web.Response:
    # ResourceNotFoundException through Jellyfin's ExceptionMiddleware (not in development).
    return web.Response(status=404, text="Error processing request.")
