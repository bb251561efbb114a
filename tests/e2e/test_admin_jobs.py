"""Job runs in the operators' console: listed and filtered, never edited by hand."""


from loyalty.clock import FixedClock
from loyalty.services.jobs import run_due
from loyalty.store.models import JobRun
from tests.conftest import at


def test_staff_see_job_runs_and_cannot_change_them(operator, default_rules):
    now = at("2027-03-17 09:00")
    run_due(now, clock=FixedClock(now))
    listed = operator.get("/admin/loyalty/jobrun/?state__exact=done")
    assert listed.status_code == 200
    assert b"tier_evaluation" in listed.content and b"points_expiry" in listed.content
    assert operator.get("/admin/loyalty/jobrun/add/").status_code == 403
    evaluation = JobRun.objects.get(job="tier_evaluation")
    assert operator.get(f"/admin/loyalty/jobrun/{evaluation.id}/change/").status_code == 200
    operator.post(f"/admin/loyalty/jobrun/{evaluation.id}/change/", {"state": "failed", "attempts": 9})
    assert operator.post(f"/admin/loyalty/jobrun/{evaluation.id}/delete/", {"post": "yes"}).status_code == 403
    evaluation.refresh_from_db()
    assert (evaluation.state, evaluation.attempts) == ("done", 1)
