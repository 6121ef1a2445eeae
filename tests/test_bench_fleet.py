"""The bench's fleet job, in parts: its servers' host (many emulated servers in one
process), the load it plans, and the statistics it reports. The job itself is run by
``python -m bench --only fleet`` (``--quick`` for a small one)."""

from __future__ import annotations

import json
import math
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench is not installed: it lives beside the package
    sys.path.insert(0, str(ROOT))

from bench.fleet import (  # noqa: E402
    SIZES,
    Progress,
    balance,
    completion,
    episodes,
    percentile,
    plan,
)
from bench.fleet_servers import FleetServer, ServersHost, parse_spec  # noqa: E402


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return response.status, json.loads(response.read())


def test_the_host_serves_three_servers_from_one_process() -> None:
    servers = [
        FleetServer("a", "plex", 60, seed=1),
        FleetServer("b", "jellyfin", 60, seed=2),
        FleetServer("c", "plex", 60, seed=3),
    ]
    with ServersHost(servers, latency_ms=1, nice=False) as host:
        assert [r.name for r in host.running] == ["a", "b", "c"]
        assert [r.kind for r in host.running] == ["plex", "jellyfin", "plex"]
        assert len({r.url for r in host.running}) == 3  # a port each
        assert len({r.token for r in host.running}) == 3
        assert host.rss_kb() > 0
        for r in host.running:
            if r.kind == "plex":
                status, body = _get(
                    r.url + "/library/sections", {"X-Plex-Token": r.token, "Accept": "application/json"}
                )
                assert status == 200 and "MediaContainer" in body
            else:
                headers = {"Authorization": f'MediaBrowser Token="{r.token}"', "Accept": "application/json"}
                status, body = _get(r.url + "/System/Info", headers)
                assert status == 200 and body.get("ServerName")
        # one server's token is not another's
        a, _, c = host.running
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(c.url + "/library/sections", {"X-Plex-Token": a.token, "Accept": "application/json"})
        assert refused.value.code == 401
        pid = host.pid
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_the_spec_is_a_list_or_an_object() -> None:
    servers, latency, shape = parse_spec('[{"name": "x", "kind": "plex", "episodes": 5}]')
    assert servers == [FleetServer("x", "plex", 5, 1)] and latency == 0.0 and shape == "varied"
    servers, latency, _ = parse_spec(
        '{"latency_ms": 2, "servers": [{"name": "x", "kind": "emby", "episodes": 5, "seed": 9}]}'
    )
    assert servers == [FleetServer("x", "emby", 5, 9)] and latency == 2.0
    with pytest.raises(ValueError, match="one name"):
        parse_spec(
            '[{"name": "x", "kind": "plex", "episodes": 5}, {"name": "x", "kind": "plex", "episodes": 5}]'
        )


def test_the_full_load_is_skewed_and_mixed() -> None:
    planned = plan(200, SIZES, ["plex", "jellyfin"])
    sizes = [p.size for p in planned]
    assert (sizes.count("small"), sizes.count("medium"), sizes.count("large")) == (150, 45, 5)
    assert sum(p.server.episodes for p in planned) == 150 * 500 + 45 * 5_000 + 5 * 50_000
    kinds = [p.server.kind for p in planned]
    assert kinds.count("jellyfin") == 50 and kinds.count("plex") == 150
    assert len({p.server.name for p in planned}) == 200
    assert sizes != sorted(sizes)  # shuffled, not grouped
    assert plan(200, SIZES, ["plex", "jellyfin"]) == planned  # seeded
    groups = balance([p.server for p in planned], 4)
    loads = [sum(s.episodes for s in g) for g in groups]
    assert len(groups) == 4 and sum(len(g) for g in groups) == 200
    assert max(loads) - min(loads) <= 50_000  # no heavier than one large server apart
    assert len(balance([p.server for p in planned[:2]], 4)) == 2  # no empty host


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0  # the 2nd of 4
    assert percentile([7.0], 0.95) == 7.0
    assert math.isnan(percentile([], 0.5))


def _server(name: str, start: float, end: float, rows: int) -> dict[str, object]:
    return {"name": name, "rows": rows, "first_started_at": start, "finished_at": end}


def test_completion_and_the_small_servers_worst_wait() -> None:
    report = {
        "seconds": 10.0,
        "servers": [
            _server("big", 0.0, 8.0, 800),
            *(_server(f"s{n}", n * 0.5, n * 0.5 + 0.5, 10) for n in range(19)),
        ],
    }
    sizes = {"big": "large", **{f"s{n}": "small" for n in range(19)}}
    got = completion(report, sizes)
    ends = sorted([8.0, *(n * 0.5 + 0.5 for n in range(19))])
    assert got["p50_s"] == ends[9] and got["p95_s"] == ends[18] and got["max_s"] == 9.5
    assert got["by_size"]["small"]["servers"] == 19
    assert got["by_size"]["small"]["max_wait_s"] == 9.0
    assert got["by_size"]["small"]["max_s"] == 9.5
    assert got["by_size"]["large"] == {
        "servers": 1,
        "p50_s": 8.0,
        "p95_s": 8.0,
        "max_s": 8.0,
        "max_wait_s": 0.0,
    }


def test_progress_counts_the_episodes_as_they_are_written(tmp_path: Path) -> None:
    import apsw

    progress = Progress(tmp_path, ["a", "b", "c"])
    assert progress.episodes() == 0  # no database yet
    a = apsw.Connection(str(tmp_path / "a.db"))
    a.execute("PRAGMA journal_mode=WAL")
    assert progress.episodes() == 0  # created, no schema yet
    a.execute("CREATE TABLE episodes (id INTEGER PRIMARY KEY)")
    a.execute("INSERT INTO episodes VALUES (1), (2), (3)")
    b = apsw.Connection(str(tmp_path / "b.db"))
    b.execute("CREATE TABLE episodes (id INTEGER PRIMARY KEY); INSERT INTO episodes VALUES (1)")
    assert progress.episodes() == 4
    a.execute("INSERT INTO episodes VALUES (4), (5)")  # the log changed: read again
    assert progress.episodes() == 6
    assert episodes(tmp_path, ["a", "b", "c"]) == {"a": 5, "b": 1, "c": -1}
