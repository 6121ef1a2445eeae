"""What a run does with a library, and how it ends: pure functions, no processes."""

from __future__ import annotations

from typing import Any

import pytest

from importer.model import RunMode, RunStatus, StreamKind, StreamProgress
from importer.plan import (
    FinishOptions,
    ListingOutcome,
    PlanOptions,
    failed,
    finish_library,
    interrupted,
    plan_library,
)
from importer.protocol import StoredLibrary

DAY = 86400.0
NOW = 1_800_000_000.0
EPISODES = StreamKind.EPISODES


def stored(**fields: Any) -> StoredLibrary:
    values: dict[str, Any] = {
        "library_id": 3,
        "populated": [],
        "watermark": None,
        "verified_at": None,
        "unfinished_run": None,
        "unfinished_mode": None,
        "unfinished_progress": None,
    } | fields
    return StoredLibrary(**values)


SYNCED = {"populated": list(StreamKind), "watermark": int(NOW - DAY), "verified_at": int(NOW - DAY)}
PROGRESS = {EPISODES: StreamProgress(total=5000, committed=[(0, 3000)])}


def test_a_new_library_is_listed_in_full() -> None:
    plan = plan_library(stored(), PlanOptions(), NOW)
    assert (plan.mode, plan.watermark, plan.resume_run, plan.supersede_run) == (
        RunMode.FULL,
        None,
        None,
        None,
    )
    assert not plan.populated and not plan.adopt and not plan.link_all


def test_a_synced_library_is_listed_from_its_watermark() -> None:
    plan = plan_library(stored(**SYNCED), PlanOptions(), NOW)
    assert plan.mode is RunMode.INCREMENTAL and plan.watermark == NOW - DAY
    assert plan.populated == frozenset(StreamKind) and plan.adopt  # a done run built the guid index


@pytest.mark.parametrize(
    ("options", "verified_days_ago"),
    [
        pytest.param(PlanOptions(full=True), 1, id="--full"),
        pytest.param(PlanOptions(delta=False), 1, id="no date filter (Emby)"),
        pytest.param(PlanOptions(), 8, id="last full run older than a week"),
        pytest.param(PlanOptions(verify_after_s=0.5 * DAY), 1, id="--verify-after 0.5"),
    ],
)
def test_a_run_is_full_when_asked_or_when_verification_is_due(
    options: PlanOptions, verified_days_ago: float
) -> None:
    plan = plan_library(stored(**SYNCED | {"verified_at": int(NOW - verified_days_ago * DAY)}), options, NOW)
    assert plan.mode is RunMode.FULL and plan.watermark is None


def test_an_interrupted_full_run_is_resumed_unless_restarted() -> None:
    unfinished = {"unfinished_run": 9, "unfinished_mode": RunMode.FULL, "unfinished_progress": PROGRESS}
    plan = plan_library(stored(**unfinished), PlanOptions(), NOW)
    assert (plan.mode, plan.resume_run, plan.supersede_run) == (RunMode.FULL, 9, None)
    assert plan.progress == PROGRESS and plan.link_all
    restarted = plan_library(stored(**unfinished), PlanOptions(restart=True), NOW)
    assert (restarted.resume_run, restarted.supersede_run, restarted.progress) == (None, 9, {})


@pytest.mark.parametrize(
    "unfinished",
    [
        pytest.param(
            {"unfinished_mode": RunMode.INCREMENTAL, "unfinished_progress": PROGRESS}, id="incremental"
        ),
        pytest.param(
            {"unfinished_mode": RunMode.FULL, "unfinished_progress": None}, id="killed before a commit"
        ),
    ],
)
def test_other_unfinished_runs_are_superseded(unfinished: dict[str, Any]) -> None:
    plan = plan_library(stored(**SYNCED, unfinished_run=4, **unfinished), PlanOptions(), NOW)
    # an interrupted incremental run starts again from the same watermark: it costs little
    assert (plan.mode, plan.watermark, plan.resume_run, plan.supersede_run) == (
        RunMode.INCREMENTAL, NOW - DAY, None, 4,
    )  # fmt: skip
    assert plan.link_all  # the killed run may have left rows without their parents


COMPLETE = ListingOutcome(True, tuple(StreamKind), {EPISODES: 1000})


def test_an_incomplete_listing_deletes_nothing() -> None:
    ending = finish_library(ListingOutcome(False, (), {}), {EPISODES: 900}, 1000, FinishOptions())
    assert (
        ending.status is RunStatus.INCOMPLETE and not ending.delete and "run again" in (ending.reason or "")
    )


def test_a_complete_listing_deletes_what_it_did_not_name() -> None:
    assert finish_library(COMPLETE, {}, 1000, FinishOptions()).status is RunStatus.DONE
    ending = finish_library(COMPLETE, {EPISODES: 50, StreamKind.SHOWS: 1}, 1000, FinishOptions())
    assert (ending.status, ending.delete) == (RunStatus.DONE, True)  # 51 rows, but only 5.1%


@pytest.mark.parametrize(("gone", "stored"), [(51, 500), (101, 1000), (5000, 10_000)])
def test_the_guard_holds_back_a_mass_delete(gone: int, stored: int) -> None:
    ending = finish_library(COMPLETE, {EPISODES: gone}, stored, FinishOptions())
    assert ending.status is RunStatus.STOPPED and not ending.delete
    assert f"{gone:,} of the {stored:,}" in (ending.reason or "") and "--allow-mass-delete" in (
        ending.reason or ""
    )
    allowed = finish_library(COMPLETE, {EPISODES: gone}, stored, FinishOptions(allow_mass_delete=True))
    assert (allowed.status, allowed.delete) == (RunStatus.DONE, True)


def test_a_dry_run_is_stopped_and_reported_as_such() -> None:
    ending = finish_library(COMPLETE, {EPISODES: 1}, 1000, FinishOptions(dry_run=True))
    assert (ending.status, ending.reported, ending.delete) == (RunStatus.STOPPED, RunStatus.DRY_RUN, False)
    nothing = finish_library(COMPLETE, {}, 1000, FinishOptions(dry_run=True))
    assert nothing.status is RunStatus.DONE  # nothing to hold back: the run is done


def test_interrupted_and_failed_runs() -> None:
    assert interrupted("SIGTERM").status is RunStatus.INTERRUPTED
    assert interrupted("SIGTERM").reason == "interrupted by SIGTERM" and not interrupted("SIGINT").delete
    assert (failed("disk full").status, failed("disk full").reason) == (RunStatus.FAILED, "disk full")
