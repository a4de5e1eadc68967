"""Errors of the source APIs. Messages name the API, endpoint and status, never a secret."""

from __future__ import annotations


class SourceApiError(RuntimeError):
    """Base class: something the MOOC or H5P API said or failed to say."""

    def __init__(self, api: str, endpoint: str, message: str):
        self.api = api
        self.endpoint = endpoint
        super().__init__(f"{api} API {endpoint}: {message}")


class AuthenticationError(SourceApiError):
    """401: the configured secret is wrong or missing. Never retried."""


class NotFoundError(SourceApiError):
    """404: unknown course or learner. Never retried."""


class BadResponseError(SourceApiError):
    """The body is not valid JSON or lacks a field the contract requires."""


class TransientError(SourceApiError):
    """5xx, connection reset or timeout: retried with backoff and jitter."""


class RateLimitedError(TransientError):
    """429: retried after the server's Retry-After."""

    def __init__(self, api: str, endpoint: str, retry_after: float):
        self.retry_after = retry_after
        super().__init__(api, endpoint, f"429 Too Many Requests (Retry-After {retry_after:g}s)")
