"""Tiers 2-4: hardware, models, planning, adapters and the process manager.

Nothing in this package imports Jupyter, IPython, tornado or ipywidgets, so the core
runs from a plain script, the ``xgen`` CLI or a test.
"""
