"""xgen-jupyter: serve models from Jupyter with a planner that knows the box."""

__version__ = "0.1.0"
