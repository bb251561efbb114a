"""One tree of errors, each with a stable code that clients may rely on.

    LoyaltyError                      code          HTTP (mapped at the edge)
    ├── InvalidInput                  invalid_*     400/422  a field is wrong; names the field
    │   └── RulesetInvalid            ruleset_invalid       names the path in the document
    ├── NotFound                      unknown_*     404  unknown member / order
    ├── Conflict                      *_conflict    409  a replay with a different payload,
    │                                                      a duplicate registration
    ├── Forbidden                     (business)    403  the caller may not do this to the member:
    │                                                      inviter_not_eligible
    └── Refused                       (business)    422  valid input the rules refuse:
                                                           refund_exceeds_paid, insufficient_points
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "loyalty_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class InvalidInput(LoyaltyError):
    code = "invalid_input"


class RulesetInvalid(InvalidInput):
    """A ruleset document that does not validate; `problems` lists every `path: problem`."""

    code = "ruleset_invalid"

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems), field=problems[0].split(":", 1)[0] if problems else None)


class NotFound(LoyaltyError):
    code = "not_found"


class Conflict(LoyaltyError):
    code = "conflict"


class Refused(LoyaltyError):
    code = "refused"


class Forbidden(LoyaltyError):
    """Valid input from someone the rules do not allow to act (e.g. an inviter below the top tier)."""

    code = "forbidden"
