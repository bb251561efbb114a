"""A hand-written analytics report document in the shape of docs/reports.md (metrics from
`analytics.metrics.summary`, models from `analytics.clv.summary_for_report`), for the renderer's
tests: small, with Chinese tier names, and every section filled."""

from __future__ import annotations

import copy
from typing import Any

DOCUMENT: dict[str, Any] = {
    "report": "analytics",
    "generated_for": {"as_of": "2027-04-01T00:00:00+08:00", "from": "2027-01-01", "to": "2027-03-31",
                      "tiers": None, "horizon_days": 90},
    "tier_names": {"bronze": "青铜", "silver": "白银", "gold": "黄金"},
    "metrics": {
        "period": {"from": "2027-01-01", "to": "2027-03-31", "tiers": None, "as_of": "2027-04-01T00:00:00+08:00"},
        "repeat_purchase": {"buyers": 100, "repeat_buyers": 23, "rate": "0.2300"},
        "repurchase_within": {"days": 30, "eligible": 80, "repurchased": 12, "rate": "0.1500"},
        "cohorts": {"months": [0, 1, 2],
                    "rows": [{"cohort": "2027-01", "size": 60, "retention": ["1.0000", "0.2500", "0.1167"]},
                             {"cohort": "2027-02", "size": 30, "retention": ["1.0000", "0.2000"]},
                             {"cohort": "2027-03", "size": 10, "retention": ["1.0000"]}]},
        "by_tier": {"months": ["2027-01", "2027-02", "2027-03"], "tiers": ["bronze", "silver", "gold"],
                    "members": {"bronze": [50, 70, 75], "silver": [8, 15, 18], "gold": [2, 3, 7]},
                    "arpu_fen": {"bronze": [4210, 3990, 4105], "silver": [12050, 11800, 12990],
                                 "gold": [30500, 29900, 31234]},
                    "frequency": {"bronze": ["0.4000", "0.3714", "0.3867"], "silver": ["0.8750", "0.8000", "0.8333"],
                                  "gold": ["1.5000", "1.3333", "1.4286"]}},
        "tier_distribution": {"months": ["2027-01", "2027-02", "2027-03"], "tiers": ["bronze", "silver", "gold"],
                              "counts": {"bronze": [50, 70, 75], "silver": [8, 15, 18], "gold": [2, 3, 7]}},
        "tier_migration": {"from": "2027-01-01", "to": "2027-03-31", "tiers": ["bronze", "silver", "gold"],
                           "matrix": [[40, 8, 2], [1, 5, 2], [0, 0, 2]]},
        "coupons": {"rows": [{"tier": "silver", "kind": "cash", "issued": 15, "redeemed": 6, "rate": "0.4000"},
                             {"tier": "gold", "kind": "cash", "issued": 7, "redeemed": 5, "rate": "0.7143"},
                             {"tier": "gold", "kind": "shipping", "issued": 7, "redeemed": 2, "rate": "0.2857"}]},
        "benefit_cost": {"rows": [{"month": "2027-01", "tier": "gold", "budget_fen": 100000, "issued_fen": 5000,
                                   "redeemed_fen": 1600},
                                  {"month": "2027-02", "tier": "gold", "budget_fen": 100000, "issued_fen": 7000,
                                   "redeemed_fen": 3100},
                                  {"month": "2027-01", "tier": "silver", "budget_fen": None, "issued_fen": 3000,
                                   "redeemed_fen": 1200}]},
        "points_liability": {"rows": [
            {"period": "2027-01", "opening": 0, "earned": 9120, "redeemed": 0, "reversed": 40, "expired": 0,
             "adjusted": 0, "written_off": 0, "outstanding": 9080},
            {"period": "2027-02", "opening": 9080, "earned": 8012, "redeemed": 1500, "reversed": 0, "expired": 0,
             "adjusted": 10, "written_off": 0, "outstanding": 15602}]},
        "rfm": {"segments": [
            {"segment": "champions", "members": 12, "share": "0.1200", "recency_days_median": 10,
             "frequency_median": "5", "monetary_fen_median": 123450},
            {"segment": "at_risk", "members": 30, "share": "0.3000", "recency_days_median": 64,
             "frequency_median": "2", "monetary_fen_median": 45600},
            {"segment": "new", "members": 58, "share": "0.5800", "recency_days_median": 20,
             "frequency_median": "1", "monetary_fen_median": 8800}]},
    },
    "models": {
        "model": {"bgnbd": {"r": "0.2430", "alpha": "4.4140", "a": "0.7930", "b": "2.4260",
                            "log_likelihood": "-9582.4"},
                  "gamma_gamma": {"p": "6.2500", "q": "3.7400", "v": "15.4400"}, "time_unit": "week",
                  "customers": 100},
        "horizon_days": 90,
        "expected_purchases_total": "41.7",
        "expected_value_fen_total": 987654,
        "p_alive_histogram": {"bins": [f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10)],
                              "members": [3, 4, 2, 5, 6, 7, 9, 11, 20, 33]},
        "churn_risk": [{"member": "m-<007>", "p_alive": "0.1234", "expected_purchases": "0.12",
                        "expected_value_fen": 1234, "past_value_fen": 99900},
                       {"member": "m-042", "p_alive": "0.2001", "expected_purchases": "0.31",
                        "expected_value_fen": 4321, "past_value_fen": 45600}],
    },
}


def document(**changes: Any) -> dict[str, Any]:
    """A deep copy of DOCUMENT with top-level keys replaced."""
    return {**copy.deepcopy(DOCUMENT), **changes}
