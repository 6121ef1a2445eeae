"""The importer as a user runs it: the installed ``importer`` console script, a whole
process started from an empty folder.

What a user waits for is the whole process: interpreter start-up, imports, the worker
processes' start, the sync, the late indexes, the final checkpoint and the exit. The
folder is a fresh empty one, so that nothing in the current folder (the project's
checkout holds an ``importer/`` package) can stand in for the installed code. The token
is in a 0600 file, as a user keeps it.

CPU time is the process's and that of its waited-for children (its workers), from
``os.wait4``: the kernel adds a reaped child's time, and its own children's, to its
parent's, so one number covers every process of the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRun:
    seconds: float  # wall time, from the start of the process to its exit
    cpu_s: float  # user + system time of the process and its waited-for children
    #: the largest peak RSS of the process and its waited-for children (what wait4 gives)
    rss_max_kb: int
    exit_code: int = 0
    output: str = ""  # the end of its stdout and stderr, when it failed


def console_script() -> Path:
    """The ``importer`` script installed next to this interpreter."""
    script = Path(sys.executable).parent / "importer"
    if not os.access(script, os.X_OK):
        raise RuntimeError(f"no importer console script at {script}: install the package (pip install -e .)")
    return script


def compile_bytecode() -> None:
    """Byte-compile the importer package, as ``pip install`` does: an editable install (or
    PYTHONDONTWRITEBYTECODE, set on some machines) would otherwise make every measured
    process compile its modules again, ~80 ms that no installed copy spends."""
    import compileall

    import importer

    compileall.compile_dir(Path(importer.__file__).parent, quiet=1)


def write_token(path: Path, token: str) -> Path:
    """A token file readable by its owner only (the importer warns about any other)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return path


def empty_folder(parent: Path, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, *, check: bool = True) -> ProcessRun:
    """Run ``importer ARGS`` in ``cwd`` and wait for it with wait4; raise on failure
    (``check=False``: return its exit code and the end of its output instead)."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(console_script()), *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        tail = ""
        if proc.returncode != 0:
            out.seek(0)
            tail = out.read().decode(errors="replace")[-3000:]
            if check:
                raise RuntimeError(f"importer {' '.join(args[:1])} exited {proc.returncode}:\n{tail}")
    return ProcessRun(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode, tail)


def sync_args(url: str, db: Path, token_file: Path, kind: str, *, full: bool = False) -> list[str]:
    args = ["sync", url, "--db", str(db), "--token-file", str(token_file), "--kind", kind]
    return [*args, "--quiet", "--progress", "none", *(["--full"] if full else [])]


def hydrate_args(url: str, db: Path, token_file: Path, kind: str) -> list[str]:
    """``importer hydrate --db DB URL --kind K --token-file F --quiet``: the shows (the
    default), one request in flight (the default)."""
    args = ["hydrate", "--db", str(db), url, "--kind", kind, "--token-file", str(token_file)]
    return [*args, "--quiet", "--progress", "none"]


def implementation(cwd: Path, env: dict[str, str] | None = None) -> str:
    """What ``importer --version`` says runs the hot path there: "c" or "python"."""
    done = subprocess.run(
        [str(console_script()), "--version"],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    text = done.stdout.lower()
    return "python" if "twin" in text or "pure" in text else "c" if "compiled" in text else text.strip()
