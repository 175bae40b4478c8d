"""One error type with stable codes, rendered as RFC 9457 problem+json.

``code`` is the contract clients branch on; ``detail`` is for humans and may change.
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

# RFC 9457 §3.1.1: a non-dereferenceable type should be a tag URI (RFC 4151); one per code.
PROBLEM_TYPE_BASE = "tag:flint.dev,2026:errors/"


class FlintError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.param is not None:
            body["param"] = self.param
        body.update(self.extra)
        return body

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"FlintError({self.status}, {self.code!r}, {self.detail!r})"


# Short constructors for the common cases keep services readable.
def invalid(code: str, detail: str, param: str | None = None) -> FlintError:
    return FlintError(400, code, detail, param=param)


def not_found(kind: str, object_id: str | None = None, param: str | None = None) -> FlintError:
    # Never reveal whether another merchant's object exists: the same 404 either way.
    what = f" '{object_id}'" if object_id else ""
    return FlintError(404, f"{kind}_not_found", f"No such {kind.replace('_', ' ')}{what}.", param=param)


def conflict(code: str, detail: str, **extra: Any) -> FlintError:
    return FlintError(409, code, detail, extra=extra)
