"""Hostile guests (issue 14 item 8): real components that attack the runner, each run through its HTTP API."""
