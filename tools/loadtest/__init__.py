"""Locust load test of the whole service: `python -m tools.loadtest` (see __main__)."""
