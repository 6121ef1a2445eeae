"""Looking at the processes of a run from the outside, through /proc."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def children_of(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # it ended while we looked
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(entry.name))
    return out


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group ``pgid`` is still alive."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def sync_command(url: str, db: Path, token: str, *extra: str) -> list[str]:
    """The command line of a sync run, its token in a private file beside the database."""
    token_file = db.with_name("token")
    token_file.write_text(token)
    token_file.chmod(0o600)
    return [
        sys.executable,
        "-m",
        "importer",
        "sync",
        url,
        "--db",
        str(db),
        "--token-file",
        str(token_file),
        *extra,
    ]
