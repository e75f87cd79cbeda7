"""Errors that say what the caller should do next.

- ``UserError``: the person at the CLI or API did something wrong; printed as one line.
- ``RecoverableError``: a dependency is briefly unavailable; the operation is retried.
- ``StoreRejected``: the store refused the data itself (a type, a value out of range, too many
  partitions in one block); retrying the same rows cannot help, so the rows that cause it are
  isolated and dead-lettered with the engine's reason.
- ``InvalidRecord``: one record cannot be used; it goes to the dead-letter topic with the
  reason and its source coordinates, and processing moves on.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class UserError(HubError):
    """A mistake by the user: shown as one clear line, exit code non-zero."""


class ConfigError(UserError):
    """A setting has an invalid value or a required file is missing."""


class RecoverableError(HubError):
    """A dependency (broker, store) failed in a way that a retry may fix."""


class StoreUnavailable(RecoverableError):
    """The ClickHouse store could not be reached, timed out or is busy: the write is retried."""


class StoreRejected(HubError):
    """The store refused the rows themselves: permanent for those rows, never retried as is.

    ``reason`` is the engine's (or the client's encoder's) first line, kept for the dead letters.
    """

    def __init__(self, reason: str, table: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.table = table


class InvalidRecord(HubError):
    """A record that cannot be decoded or validated; it belongs in the dead-letter topic."""

    def __init__(self, reason: str, topic: str = "", partition: int = -1, offset: int = -1,
                 index: int = -1):
        super().__init__(reason)
        self.index = index  # position of the event inside a batch record; -1 for the whole record
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset
