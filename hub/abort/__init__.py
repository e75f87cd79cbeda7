"""Abort conditions judged on the stream: rollups, sliding event-time windows, alerts and actions."""
