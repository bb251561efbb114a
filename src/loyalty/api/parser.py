"""Request bodies parsed with exact decimals: a JSON number becomes a `Decimal`, never a float,
so 0.1 stays 0.1 and "more than two decimals" can be judged on the digits sent."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, cast

from django.http import HttpRequest
from ninja.parser import Parser


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class ExactJSON(Parser):
    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        document = json.loads(request.body, parse_float=Decimal, parse_constant=_refuse_constant)
        if not isinstance(document, dict):
            raise ValueError("the body must be a JSON object")
        return cast(dict[str, Any], document)
