"""The Celery tasks called in-process (no broker): a month evaluated range by range ends where
one whole evaluation ends, a range run again changes nothing, and `run_due` runs the due jobs.
Through a real broker and worker: tests/integration/test_celery_jobs.py."""

import pytest

from loyalty import tasks
from loyalty.domain.errors import InvalidInput
from loyalty.services.invitations import invite
from loyalty.services.members import id_ranges, register_member
from loyalty.services.tiers import evaluate_tiers
from loyalty.store.models import JobRun, Member
from tests.conftest import at
from tests.service.support import pay, snapshot

FEB_2027 = "2027-02-01T00:00:00+08:00"


@pytest.fixture
def shop(default_rules, clock):
    for number in range(10):
        external_id = f"m{number}"
        register_member(external_id, clock=clock)
        for order in range(number % 4):
            pay(f"{external_id}-{order}", external_id, at("2027-01-04 10:00"), str(100 + 700 * number), clock)
    invite("m9", operator="ops", clock=clock)


def test_a_month_evaluated_range_by_range_ends_as_one_whole_evaluation(shop, clock):
    whole = evaluate_tiers(at("2027-02-01 00:00"), clock=clock, dry_run=True)
    assert len(whole.changes) and sum(whole.changes.values()) > 3
    totals: dict[str, int] = {}
    for lo, hi in id_ranges(3):
        for name, count in tasks.evaluate_range(FEB_2027, lo, hi).items():
            totals[name] = totals.get(name, 0) + count
    assert totals == {"members": 10, **whole.changes}
    assert dict(whole.tiers) == {tier: Member.objects.filter(tier=tier).count() for tier in whole.tiers}
    before = snapshot()
    for lo, hi in id_ranges(4):
        assert tasks.evaluate_range(FEB_2027, lo, hi).keys() == {"members"}
    assert snapshot() == before


def test_a_range_needs_a_time_with_its_offset(shop):
    with pytest.raises(InvalidInput) as caught:
        tasks.evaluate_range("2027-02-01T00:00:00", 1, 5)
    assert caught.value.field == "as_of"


def test_run_due_runs_each_due_job_once(shop):
    first = tasks.run_due()
    done = JobRun.objects.filter(state="done").count()
    assert (first["busy"], first.get("done"), first.get("failed", 0)) == (0, done, 0)
    assert done >= 1
    assert tasks.run_due() == {"busy": 0}
    assert JobRun.objects.count() == done
