"""WebSocket URL validation: the user's ``host=`` / ``url=`` / ``path=`` options, checked once.

Invariants: a ``ParsedURL`` is always valid (built only by ``build_url``); error messages name
the offending character, never echo the input (it may hold a secret such as a token).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._errors import ConfigurationError

__all__ = ["DEFAULT_HOST", "ParsedURL", "build_url", "is_loopback"]

DEFAULT_HOST = "relay.signalwire.com"

_BAD_HOST_CHARS = frozenset("@/?#\\")  # also spaces, control and non-ASCII characters
_BAD_PATH_CHARS = frozenset("?#\\")


@dataclass(frozen=True, slots=True)
class ParsedURL:
    """A validated WebSocket URL. ``host`` has no brackets; ``path`` is the request target."""

    secure: bool
    host: str
    port: int
    path: str = "/"

    @property
    def scheme(self) -> str:
        return "wss" if self.secure else "ws"

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the port only when not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.path}"


def build_url(
    host: str | None = None,
    url: str | None = None,
    path: str = "",
    allow_insecure: bool = False,
) -> ParsedURL:
    """Validate the user's connection options (PROTOCOL.md §1).

    ``host`` is a bare host (optionally ``host:port``) reached over ``wss``; ``url`` a full
    ``ws://`` or ``wss://`` URL; give at most one (neither means ``wss://relay.signalwire.com``).
    Plain ``ws://`` is refused unless the host is loopback or ``allow_insecure`` is true.
    Raises ``ConfigurationError`` for anything else.
    """
    if host is not None and url is not None:
        raise ConfigurationError("give either host= or url=, not both")
    # Messages name the offending character, never the input: it may hold a secret.
    if url is None:
        netloc = DEFAULT_HOST if host is None else host
        if bad := _bad_char(netloc, _BAD_HOST_CHARS):
            raise ConfigurationError(
                f"invalid host: {bad} is not allowed; give a bare host name such as "
                f"'example.signalwire.com' (use url= for a full URL)"
            )
        secure, url_path = True, ""
    else:
        scheme, _, rest = url.partition("://")
        if scheme.lower() not in ("ws", "wss"):
            raise ConfigurationError("invalid url: it must start with ws:// or wss://")
        netloc, slash, tail = rest.partition("/")
        if bad := _bad_char(netloc, _BAD_HOST_CHARS):
            raise ConfigurationError(f"invalid url: {bad} is not allowed in the host part")
        secure, url_path = scheme.lower() == "wss", slash + tail
    if url_path and path:
        raise ConfigurationError("give the path either in url= or in path=, not both")
    target = url_path or path or "/"
    if not target.startswith("/"):
        raise ConfigurationError("invalid path: it must start with '/'")
    if bad := _bad_char(target, _BAD_PATH_CHARS):
        raise ConfigurationError(f"invalid path: {bad} is not allowed (no query or fragment)")
    if not netloc:
        raise ConfigurationError("invalid url: no host")
    hostname, port = _split_netloc(netloc, 443 if secure else 80)
    if not secure and not allow_insecure and not is_loopback(hostname):
        raise ConfigurationError(
            f"refusing plain ws:// to non-loopback host {hostname!r}: use wss://, "
            f"or pass allow_insecure=True"
        )
    return ParsedURL(secure=secure, host=hostname, port=port, path=target)


def _bad_char(text: str, bad: frozenset[str]) -> str:
    """A description of the first forbidden character in ``text``, or "" when clean."""
    for ch in text:
        if ch in bad or ch.isspace() or not ch.isprintable() or not ch.isascii():
            return "a space" if ch == " " else repr(ch)
    return ""


def _split_netloc(netloc: str, default_port: int) -> tuple[str, int]:
    if netloc.count(":") > 1 and not netloc.startswith("["):
        netloc = f"[{netloc}]"  # a bare IPv6 literal such as ::1
    try:
        parts = urlsplit(f"//{netloc}")
        hostname, port = parts.hostname, parts.port
    except ValueError:  # its message quotes the input: a secret pasted by mistake?
        raise ConfigurationError("invalid host: expected a name, an address or host:port") from None
    if not hostname or port == 0:
        raise ConfigurationError("invalid host: a host name and a port from 1 to 65535")
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            raise ConfigurationError("invalid host: not a valid IPv6 address") from None
    else:
        try:
            hostname.encode("idna")
        except UnicodeError:
            raise ConfigurationError("invalid host: not a valid host name") from None
    return hostname, default_port if port is None else port


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (also as an IPv4-mapped IPv6 address)."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
