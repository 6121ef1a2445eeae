"""The pure-Python twin of the C extension ``importer._speedups``.

Same functions, same results, same errors: the tests compare the two on random and
hostile input. Used where no compiler was available at install time, or when
``IMPORTER_PURE_PYTHON=1``.
"""

from __future__ import annotations

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(y: int, m: int) -> int:
    if m == 2 and ((y % 4 == 0 and y % 100 != 0) or y % 400 == 0):
        return 29
    return _DAYS[m - 1]


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _digits(s: str, pos: int, n: int) -> int:
    """Exactly n ASCII digits at s[pos:], or -1."""
    part = s[pos : pos + n]
    if len(part) != n or not all("0" <= c <= "9" for c in part):
        return -1
    return int(part)


def _parse(s: str) -> int | None:
    n = len(s)
    y = _digits(s, 0, 4)
    if y < 1 or n < 10 or s[4] != "-" or s[7] != "-":
        return None
    mo = _digits(s, 5, 2)
    if not 1 <= mo <= 12:
        return None
    d = _digits(s, 8, 2)
    if not 1 <= d <= _days_in_month(y, mo):
        return None
    h = mi = sec = offset = 0
    p = 10
    if p < n:
        if s[p] not in "T ":
            return None
        h, mi, sec = _digits(s, 11, 2), _digits(s, 14, 2), _digits(s, 17, 2)
        if n < 19 or s[13] != ":" or s[16] != ":" or not (0 <= h <= 23 and 0 <= mi <= 59 and 0 <= sec <= 59):
            return None
        p = 19
        if p < n and s[p] == ".":
            p += 1
            start = p
            while p < n and "0" <= s[p] <= "9":
                p += 1
            if p == start or p - start > 9:
                return None
        if p < n:
            z = s[p]
            p += 1
            if z in "+-":
                oh = _digits(s, p, 2)
                if not 0 <= oh <= 23:
                    return None
                p += 2
                if p < n and s[p] == ":":
                    p += 1
                om = _digits(s, p, 2)
                if not 0 <= om <= 59:
                    return None
                p += 2
                offset = (oh * 3600 + om * 60) * (-1 if z == "-" else 1)
            elif z != "Z":
                return None
        if p != n:
            return None
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset


def parse_timestamp(value: str | None, /) -> int | None:
    """Unix seconds (UTC) of an ISO 8601 date or date-time; see the C docstring."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"timestamp must be str or None, not {type(value).__name__}")
    value.encode("utf-8")  # lone surrogates raise UnicodeEncodeError, as in C
    out = _parse(value)
    if out is None:
        raise ValueError(f"invalid timestamp: {value!r}")
    return out
