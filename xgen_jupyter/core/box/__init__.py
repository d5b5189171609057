"""Box-wide coordination of several users' Jupyter servers on one machine (see docs/shared-box.md)."""
