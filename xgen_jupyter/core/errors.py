"""User-facing errors: each says what went wrong and what to do about it.

Every XGenError subclass lives here, so a client can rebuild the class an API answer names
(``{"error": "CapacityRefused", ...}``) with :func:`error_class`.
"""

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


# -- refusals of the shared box's registry (core/box): each names who holds what -------------------
class CapacityRefused(XGenError):
    """Not enough free memory left on a device once every reservation on the box is counted."""

    status = 409
    #: The registry's key of the device that was short (eviction unloads servers holding bytes there).
    device: str | None = None


class QuotaExceeded(XGenError):
    """The user's quota (set by the box's administrator) would be exceeded."""

    status = 409


class ShareError(XGenError):
    """A model cannot be shared as asked."""

    status = 409


def error_class(name: str) -> type[XGenError]:
    """The XGenError subclass an API error answer names; XGenError itself for a name not known here."""
    cls = globals().get(name)
    return cls if isinstance(cls, type) and issubclass(cls, XGenError) else XGenError
