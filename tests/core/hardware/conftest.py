"""Fixtures for hardware tests (the helpers live in hwfixtures.py so tests can import them)."""

from tests.core.hardware.hwfixtures import _fresh_hardware_state, fake_tools

__all__ = ["_fresh_hardware_state", "fake_tools"]
