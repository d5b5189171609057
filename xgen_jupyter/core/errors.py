"""User-facing errors: each says what went wrong and what to do about it."""

from __future__ import annotations


class XGenError(Exception):
    """Base class for errors shown to users as one friendly line, never a traceback."""

    #: HTTP status the Jupyter layer maps this error to.
    status = 400

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, str | None]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class RequestError(XGenError):
    """A load request has a bad field (type, range, unknown backend, ...)."""


class ModelError(XGenError):
    """The model path is missing, not a model, corrupt, or outside the model dirs."""


class BackendUnavailable(XGenError):
    """No installed engine can serve this model on this box."""

    status = 409


class ServerNotFound(XGenError):
    """No server is loaded under that name."""

    status = 404


class ServerConflict(XGenError):
    """A server with that name exists with a different model."""

    status = 409
