"""Every error Bond raises on purpose, in one family.

HTTP-facing errors carry their status code and a reason a person can act on; the web apps map
them to responses at the edge, so the code that raises them never builds a response itself.
"""

from __future__ import annotations


class BondError(Exception):
    """Base of every error Bond raises on purpose."""


class ConfigError(BondError):
    """The configuration file or environment holds a value Bond cannot use."""


class StorageError(BondError):
    """A database could not be opened, migrated or written."""


class EventInvalid(BondError):
    """One event of a batch breaks the tracking spec; the rest of the batch is unaffected.

    `code` is a short stable tag for metrics and logs; the message is the reason for people.
    """

    def __init__(self, reason: str, *, code: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class RequestError(BondError):
    """A request Bond refuses as a whole. Subclasses fix the HTTP status."""

    status_code = 400
    code = "bad_request"

    def __init__(self, reason: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.headers = headers or {}


class BadRequest(RequestError):
    status_code = 400
    code = "bad_request"


class Unauthorized(RequestError):
    status_code = 401
    code = "unauthorized"


class Forbidden(RequestError):
    status_code = 403
    code = "forbidden"


class NotFound(RequestError):
    status_code = 404
    code = "not_found"


class Gone(RequestError):
    """What was asked for is no longer answerable (an identity-map sync token from before the
    state recorded changes): the reason says what to ask instead."""

    status_code = 410
    code = "gone"


class PayloadTooLarge(RequestError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(RequestError):
    status_code = 415
    code = "unsupported_media_type"


class Overloaded(RequestError):
    """The writer cannot take more right now; the client should retry after a pause."""

    status_code = 503
    code = "overloaded"

    def __init__(self, reason: str, *, retry_after_s: int = 1) -> None:
        super().__init__(reason, headers={"Retry-After": str(retry_after_s)})


class Unavailable(RequestError):
    """A dependency (the event log) is not usable; nothing was stored."""

    status_code = 503
    code = "unavailable"

    def __init__(self, reason: str, *, retry_after_s: int | None = None) -> None:
        retry = {} if retry_after_s is None else {"Retry-After": str(retry_after_s)}
        super().__init__(reason, headers=retry)
