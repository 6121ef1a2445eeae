"""The emulator's response cache: the same answers, without rendering them again."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_sync import FEATURED, check_database, run_sync

from importer.emulator import Controls, Library, make_server


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_cached_answers_equal_rendered_ones(tmp_path: Path, kind: str) -> None:
    server = make_server(kind, Library(FEATURED), controls=Controls(cache_responses=True))
    first = await run_sync(server, tmp_path / "first.db", kind=kind, page_size=300)
    entries = len(server.cache)
    assert entries > 0
    rendered = [e.items for e in server.log]
    server.log.clear()
    second = await run_sync(server, tmp_path / "second.db", kind=kind, page_size=300)
    assert len(server.cache) == entries, "the second run was answered from the cache"
    assert [e.items for e in server.log] == rendered
    assert first.libraries[0].totals == second.libraries[0].totals
    check_database(server, tmp_path / "second.db")


async def test_changing_controls_clears_the_cache() -> None:
    server = make_server("plex", Library(FEATURED), controls=Controls(cache_responses=True))
    key = server.cache.key("GET", "/x", {}, {})
    server.cache.put(key, b"body", 200, {"Content-Type": "text/plain"}, 0, 0.0)
    assert server.cache.get(key) is not None
    url = await server.start()
    try:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            resp = await http.post(
                f"{url}/_emulator/controls", json={"page_cap": 10}, headers={"X-Plex-Token": server.token}
            )
            assert resp.status == 200
    finally:
        await server.stop()
    assert server.cache.get(key) is None and len(server.cache) == 0
