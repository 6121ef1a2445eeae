"""A library's run from start to end, decided in one place by pure functions.

- :func:`plan_library`: what a run does with a library (full or incremental, resume an
  interrupted run or start a new one, from which watermark), from what the database
  knows of it and the options;
- :func:`finish_library`: the status a listed library ends with, and whether what its
  complete listing proved gone is deleted (the mass-delete guard, ``--dry-run``);
- :func:`interrupted`, :func:`failed`: the ends that are not decided by a listing.

No I/O and no clock (``now`` is an argument): the main process calls them, which owns
each library's state; the writer only records what they decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from importer.model import LibraryProgress, RunMode, RunStatus, StreamKind
from importer.protocol import StoredLibrary

#: a sweep that would delete more than this share of a library's rows ...
MASS_DELETE_SHARE = 0.10
#: ... and more than this many rows deletes nothing until the user allows it
MASS_DELETE_ROWS = 50


@dataclass(frozen=True, slots=True)
class PlanOptions:
    full: bool = False  # --full: list every item even where an incremental run would do
    restart: bool = False  # --restart: discard an unfinished run instead of resuming it
    verify_after_s: float = 7 * 86400  # a run becomes full when the last full one is older
    delta: bool = True  # the server can list the items changed since a time (not Emby)


@dataclass(frozen=True, slots=True)
class LibraryPlan:
    mode: RunMode
    watermark: int | None  # incremental: list the items changed since then (server clock)
    resume_run: int | None  # continue this unfinished full run where it stopped
    supersede_run: int | None  # an unfinished run that is not resumed: recorded as failed
    progress: LibraryProgress  # what the resumed run had committed, per stream
    populated: frozenset[StreamKind]  # streams that hold rows: pages are compared with them
    #: a new item may take over the stored row of its guid (a file replaced on Plex): only
    #: once a done run has built the guid index, so that the lookup is cheap
    adopt: bool
    #: rows an unfinished run left may lack their parents: link every row at the end
    link_all: bool


def plan_library(stored: StoredLibrary, options: PlanOptions, now: float) -> LibraryPlan:
    """What this run does with a library the database knows as ``stored``."""
    unfinished = stored.unfinished_run
    populated = frozenset(stored.populated)
    adopt = stored.verified_at is not None
    link_all = unfinished is not None
    if (
        unfinished is not None
        and not options.restart
        and stored.unfinished_mode is RunMode.FULL
        and stored.unfinished_progress
    ):
        # An interrupted full run resumes page by page. An incremental one starts again
        # from the same watermark: it costs little.
        progress = dict(stored.unfinished_progress)
        return LibraryPlan(RunMode.FULL, None, unfinished, None, progress, populated, adopt, link_all)
    verified = stored.verified_at is not None and now - stored.verified_at < options.verify_after_s
    if options.full or not options.delta or stored.watermark is None or not verified:
        return LibraryPlan(RunMode.FULL, None, None, unfinished, {}, populated, adopt, link_all)
    return LibraryPlan(
        RunMode.INCREMENTAL, stored.watermark, None, unfinished, {}, populated, adopt, link_all
    )


@dataclass(frozen=True, slots=True)
class ListingOutcome:
    """What the planner found when every stream of a library was listed."""

    complete: bool  # every listing verified complete against the server's counts
    sweep: tuple[StreamKind, ...]  # streams listed in full and complete: rows they missed are gone
    totals: Mapping[StreamKind, int]  # the server's counts


@dataclass(frozen=True, slots=True)
class FinishOptions:
    allow_mass_delete: bool = False
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Ending:
    status: RunStatus  # as the database records it
    reported: RunStatus  # as the run's result reports it (DRY_RUN for a held-back dry run)
    reason: str | None
    delete: bool  # delete the rows the listing proved gone

    @staticmethod
    def of(status: RunStatus, reason: str | None = None, *, delete: bool = False) -> Ending:
        return Ending(status, status, reason, delete)


def finish_library(
    outcome: ListingOutcome,
    gone: Mapping[StreamKind, int],
    stored: int,
    options: FinishOptions,
) -> Ending:
    """How a listed library ends. ``gone``: per stream, the stored rows its complete listing
    did not name; ``stored``: every row the library holds."""
    if not outcome.complete:
        return Ending.of(
            RunStatus.INCOMPLETE, "the library kept changing while it was listed; run again to complete it"
        )
    doomed = sum(gone.values())
    if doomed == 0:
        return Ending.of(RunStatus.DONE)
    if options.dry_run:
        return Ending(RunStatus.STOPPED, RunStatus.DRY_RUN, "dry run", delete=False)
    if doomed > MASS_DELETE_ROWS and doomed > MASS_DELETE_SHARE * stored and not options.allow_mass_delete:
        breakdown = ", ".join(f"{n:,} {stream}" for stream, n in gone.items() if n)
        return Ending.of(
            RunStatus.STOPPED,
            f"the server no longer lists {doomed:,} of the {stored:,} items stored for this library "
            f"({breakdown}); nothing was deleted. If that is right, check the list with --dry-run, "
            "then run again with --allow-mass-delete",
        )
    return Ending.of(RunStatus.DONE, delete=True)


def interrupted(signal_name: str) -> Ending:
    """A run stopped by a signal: what is committed stays, and a full run resumes."""
    return Ending.of(RunStatus.INTERRUPTED, f"interrupted by {signal_name}")


def failed(reason: str) -> Ending:
    """A run that failed: its listing is kept, so that a full run resumes."""
    return Ending.of(RunStatus.FAILED, reason)
