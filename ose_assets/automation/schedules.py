"""Schedules: nightly rescoring and weekly retraining."""

SCHEDULES = []
