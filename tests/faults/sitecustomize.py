"""Fault injection for integration tests: a slow ClickHouse store, switched by a file.

A test puts this directory first on ``PYTHONPATH`` of a worker process (Python imports
``sitecustomize`` at start-up) and sets ``HUB_FAULT_STORE_DELAY_FILE`` to a path. While that
file exists, every ``Store.insert`` first sleeps for the number of seconds written in it; delete
the file and the store is fast again. Nothing in the product reads these variables: the hub is
unchanged, the store is only made slow from outside, the way a loaded server would be.
"""

from __future__ import annotations

import os
import time

_DELAY_FILE = os.environ.get("HUB_FAULT_STORE_DELAY_FILE", "")

if _DELAY_FILE:
    from hub.storage import client as _client

    _original_insert = _client.Store.insert

    def _slow_insert(self, *args, **kwargs):
        try:
            with open(_DELAY_FILE) as f:
                delay = float(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            delay = 0.0
        if delay > 0:
            time.sleep(delay)
        return _original_insert(self, *args, **kwargs)

    _client.Store.insert = _slow_insert
