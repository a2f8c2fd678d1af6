"""The API's errors: each knows its HTTP status and a stable ``error`` code for the JSON body.

    ApiError (KubestackError)
    ├── UnauthorizedError       401: no token, an unknown token, a forged or stale Slack request
    ├── ForbiddenError          403: the token's role is too low
    ├── NotFoundError           404: no such object (or another tenant's: not revealed)
    ├── ConflictError           409: the proposal is not pending, or forbidden
    ├── BadRequestError         400: input that parses but makes no sense
    └── UnavailableError        503: a dependency (Kafka, the Slack secret) is missing
"""

from __future__ import annotations

from typing import Any

from kubestack.errors import KubestackError


class ApiError(KubestackError):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail if self.detail is not None else self.message}


class UnauthorizedError(ApiError):
    status, code = 401, "unauthorized"


class ForbiddenError(ApiError):
    status, code = 403, "forbidden"


class NotFoundError(ApiError):
    status, code = 404, "not_found"


class ConflictError(ApiError):
    status, code = 409, "conflict"


class BadRequestError(ApiError):
    status, code = 400, "bad_request"


class UnavailableError(ApiError):
    status, code = 503, "unavailable"
    retriable = True
