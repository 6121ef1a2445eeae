"""Query parameters as ASP.NET model binding reads them, and the 400 it answers otherwise."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime


class BadRequest(Exception):
    """A parameter that ASP.NET model binding rejects: 400 with a ProblemDetails body."""


class QueryParams:
    """Query parameters as ASP.NET binds them: names case-insensitive, lists comma-separated
    (``CommaDelimitedCollectionModelBinder``), the first value for a scalar."""

    def __init__(self, query: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        pairs = query.items() if isinstance(query, Mapping) else query
        for key, value in pairs:
            self._values.setdefault(key.lower(), []).append(value)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._values

    def get(self, name: str) -> str | None:
        values = self._values.get(name.lower())
        return values[0] if values else None

    def csv(self, name: str) -> list[str]:
        out: list[str] = []
        for value in self._values.get(name.lower(), ()):
            out.extend(v.strip() for v in value.split(",") if v.strip())
        return out

    def flag(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None or value == "":
            return None
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        raise BadRequest(f"The value '{value}' is not valid for {name}.")

    def int(self, name: str) -> int | None:
        value = self.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"The value '{value}' is not valid for {name}.") from None

    def date(self, name: str) -> float | None:
        """An ISO date as unix seconds (``.ToUniversalTime()``: no offset means UTC here)."""
        value = self.get(name)
        if value is None or value == "":
            return None
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadRequest(f"The value '{value}' is not valid for {name}.") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
