"""Where fleet jobs run. One small interface, so that another engine can be added
without touching the jobs: submit a job, collect the ones that ended, cancel them all.

An engine reports every job it was given exactly once, as a :class:`JobOutcome`: one
whose process died for good is reported ``lost`` (exit 75, so the fleet retries it).
"""

from __future__ import annotations

from typing import Protocol

from importer.fleet.job import JobOutcome, JobSpec


class Engine(Protocol):
    #: "local" or "ray": in reports and messages
    name: str

    def start(self) -> None:
        """Be ready to run jobs (start the processes it needs)."""

    def submit(self, spec: JobSpec) -> None:
        """Run a job; it runs at once (the fleet bounds how many are in flight)."""

    def wait(self, timeout: float) -> list[JobOutcome]:
        """The jobs that ended, as they complete: waits up to ``timeout`` s for one."""

    def cancel_all(self, *, force: bool = False) -> None:
        """Ask every running job to stop cleanly (each commits what it fetched, and is
        then reported ``interrupted``); ``force``: end them at once."""

    def close(self) -> None:
        """Stop whatever it started: no process of its outlives it."""


def make_engine(name: str, *, jobs: int, address: str | None = None) -> Engine:
    if name == "ray":
        from importer.fleet.engines.ray import RayEngine

        return RayEngine(jobs=jobs, address=address)
    from importer.fleet.engines.local import LocalEngine

    return LocalEngine()


def lost(spec: JobSpec, why: str) -> JobOutcome:
    """The outcome of a job whose process died before it could say how it ended."""
    return JobOutcome(
        name=spec.server.name,
        exit_code=75,
        outcome="lost",
        message=f"the job's process died ({why}); what it committed is kept, and it is run again",
    )
