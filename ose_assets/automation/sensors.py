"""Sensors: rescoring when new files land in the inbox."""

SENSORS = []
