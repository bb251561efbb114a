from loyalty.domain.events import parse_order
from loyalty.services.members import register_member
from loyalty.services.orders import record_order
from tests.conftest import at


def test_saturday_order_with_fresh_items_earns_950_growth(default_rules, clock):
    register_member("m1", clock=clock)
    outcome = record_order(parse_order({
        "order_id": "o1", "member": "m1", "paid_at": at("2027-01-02 10:00").isoformat(), "amount": "400",
        "items": [{"sku": "a", "category": "fresh", "amount": "100"}, {"sku": "b", "amount": "300"}],
    }), clock=clock)
    assert (outcome.growth, outcome.points) == (950, 400)
