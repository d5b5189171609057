"""Refusals of the box registry: each names who holds what."""

from __future__ import annotations

from ..errors import XGenError


class CapacityRefused(XGenError):
    """Not enough free memory left on a device once every reservation on the box is counted."""

    status = 409


class QuotaExceeded(XGenError):
    """The user's quota (set by the box's administrator) would be exceeded."""

    status = 409


class ShareError(XGenError):
    """A model cannot be shared as asked."""

    status = 409
