"""The two exception types of the core.

``LocalProtocolError``: the caller misused the API or passed invalid input (fix your code).
Nothing has been queued when it is raised.

``RemoteProtocolError``: the peer sent something the protocol does not allow. ``receive()``
on any input either succeeds or raises this, and the connection stays usable afterwards
wherever the protocol allows it.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Root of the core's exceptions."""


class LocalProtocolError(ProtocolError):
    """Raised when the local caller breaks the rules: bad input, wrong state."""


class RemoteProtocolError(ProtocolError):
    """Raised when the peer breaks the protocol: bad JSON, wrong shapes, unknown replies."""
