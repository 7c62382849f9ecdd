"""Infrastructure failures map to service_unavailable with Retry-After, never internal_error."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from kombu.exceptions import OperationalError as BrokerError
from psycopg.errors import DeadlockDetected, SerializationFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from multimail.exceptions import to_api_error


def _wrapped(cause: Exception) -> OperationalError:
    """What Django raises: its own OperationalError with the driver's error as the cause."""
    error = OperationalError(str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("exc", "retry_after", "says"),
    [
        (_wrapped(DeadlockDetected("deadlock detected")), "1", "concurrent"),
        (_wrapped(SerializationFailure("could not serialize")), "1", "concurrent"),
        (OperationalError("server closed the connection"), "5", "database"),
        (RedisConnectionError("Connection refused"), "5", "cache"),
        (RedisTimeoutError("Timeout reading"), "5", "cache"),
        (BrokerError("Error 111 connecting"), "5", "task queue"),
    ],
)
def test_infrastructure_errors_are_service_unavailable(
    exc: Exception, retry_after: str, says: str
) -> None:
    error = to_api_error(exc)
    assert error is not None
    assert error.code == "service_unavailable"
    assert error.headers["Retry-After"] == retry_after
    assert says in error.message
    # The driver's own text never reaches the client.
    assert str(exc) not in error.message
