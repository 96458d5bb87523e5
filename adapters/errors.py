"""The two kinds of error every adapter raises; only the scheduler decides what follows."""

from __future__ import annotations


class AdapterError(Exception):
    """Base of the errors heliod's adapters raise."""


class RetryableError(AdapterError):
    """The outside thing failed this time (timeout, connection refused, 5xx): try again later."""


class PermanentError(AdapterError):
    """A person must act (bad credentials, wrong unit id, refused request): retrying won't help."""
