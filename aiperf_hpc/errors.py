"""The exception tree. Adapters translate zmq/aiohttp/OS errors into these at the boundary.

```
AiperfError
 +-- UsageError          bad options or input           -> exit 2
 +-- RunError            the run could not go on        -> exit 1
      +-- ServiceError   a service failed or never answered
      +-- ProtocolError  a frame that is not a message of the catalogue
      +-- DeadlineExceeded  a bounded wait expired; the message names what it waited for
 +-- TransportError      one HTTP request failed in the transport; it becomes that request's record
      +-- RequestTimeout     no complete response within the request timeout
      +-- ConnectionFailed   the connection could not be made or broke; the message is the cause's
```
"""

from __future__ import annotations


class AiperfError(Exception):
    """Base of every error this package raises on purpose."""


class UsageError(AiperfError):
    pass


class RunError(AiperfError):
    pass


class ServiceError(RunError):
    pass


class ProtocolError(RunError):
    pass


class DeadlineExceeded(RunError):
    pass


class TransportError(AiperfError):
    pass


class RequestTimeout(TransportError):
    pass


class ConnectionFailed(TransportError):
    pass
