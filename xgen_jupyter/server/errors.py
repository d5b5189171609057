"""One error shape for the REST API: ``{"error", "message", "hint"}`` with the XGenError's status.

Handlers raise XGenError (or HTTPError); ``write_error`` renders both, so no handler needs a
try/except and user input never turns into a 500 with a traceback.
"""

from __future__ import annotations

import json
from typing import Any

from tornado import web
from tornado.httputil import responses

from ..core.errors import RequestError, XGenError


def parse_json_object(body: bytes, what: str = "request body") -> dict[str, Any]:
    """The body as a JSON object, or a RequestError (status 400) that says what is wrong."""
    if not body or not body.strip():
        raise RequestError(f"the {what} is empty", 'send a JSON object, e.g. {"model": "default"}')
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"the {what} is not valid JSON: {exc}", "send a JSON object") from None
    if not isinstance(data, dict):
        raise RequestError(f"the {what} must be a JSON object, not {type(data).__name__}")
    return data


def error_payload(status: int, exc: BaseException | None, default: str) -> dict[str, Any]:
    if isinstance(exc, XGenError):
        return exc.to_dict()
    if isinstance(exc, web.HTTPError):
        message = exc.log_message or exc.reason or default
        if exc.args[2:]:  # log_message is a %-format with args
            try:
                message = message % exc.args[2:]
            except (TypeError, ValueError):
                pass
        return {"error": "HTTPError", "message": message, "hint": None}
    return {"error": "InternalError", "message": default, "hint": "see the Jupyter server log"}


def status_of(exc: BaseException | None, status_code: int) -> int:
    return exc.status if isinstance(exc, XGenError) else status_code


class JsonErrorsMixin:
    """For tornado handlers: XGenError keeps its status and its message, nothing logs a traceback.

    Put it first among the bases so its ``send_error``/``write_error`` win.
    """

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        super().send_error(status_of(exc, status_code), **kwargs)  # type: ignore[misc]

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, XGenError):
            req = self.request  # type: ignore[attr-defined]
            self.log.info("xgen: %s %s -> %s: %s", req.method, req.path, value.status, value)  # type: ignore[attr-defined]
        else:
            super().log_exception(typ, value, tb)  # type: ignore[misc]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        self.set_header("Content-Type", "application/json")  # type: ignore[attr-defined]
        default = responses.get(status_code, "error")
        self.finish(json.dumps(error_payload(status_code, exc, default)))  # type: ignore[attr-defined]
