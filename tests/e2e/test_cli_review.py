"""`loyalty review list|approve|reject`, in process on the test database: the same service calls
as the admin queue."""

from loyalty.cli import main
from loyalty.services import holds
from loyalty.services.members import register_member
from loyalty.store.models import Member, ReviewCase
from tests.conftest import at
from tests.service.support import pay


def test_operators_list_approve_and_reject_cases_from_the_command_line(default_rules, clock, capsys):
    members = [register_member(name, clock=clock).member for name in ("m1", "m2")]
    holds.place_holds([m.id for m in members], reason="velocity", details={}, at=at("2027-01-04 09:00"))
    pay("o1", "m1", at("2027-01-04 10:00"), "400", clock)
    first, second = (ReviewCase.objects.get(member=m).id for m in members)
    capsys.readouterr()
    assert main(["review", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[:4] for line in listed] == [[str(first), "m1", "open", "velocity"],
                                                        [str(second), "m2", "open", "velocity"]]
    assert listed[0].endswith("growth 450 points 400 orders 1 actions 0")
    assert main(["review", "approve", str(first), "--by", "ops", "--note", "known customer"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"case {first} approved: member m1, growth 450, points 400 (1 orders, 0 actions)")
    assert main(["review", "reject", str(first), "--by", "ops", "--note", "again"]) == 1
    assert "error [case_decided]" in capsys.readouterr().err
    assert main(["review", "reject", str(second), "--by", "ops", "--note", "bot"]) == 0
    assert Member.objects.get(external_id="m1").growth_balance == 450
    capsys.readouterr()
    assert main(["review", "list"]) == 0 and capsys.readouterr().out == ""
    assert main(["review", "list", "--all"]) == 0
    assert "by ops: bot" in capsys.readouterr().out
