"""Benchmarks (commands that print figures, not tests) and the synthetic data they run on.

Run one with `ose bench NAME` or `python -m ose_assets.benchmarks.NAME`; nothing in the pipeline imports them.
"""
