"""Windows' bind rules for TCP sockets, simulated for tests that run on Linux.

Winsock decides a second bind to an address and port already held from the
options both sockets set before binding. The rules followed here are
Microsoft's, for two sockets bound to the same specific address ("Using
SO_REUSEADDR and SO_EXCLUSIVEADDRUSE", Windows Server 2003 and later, and the
table of "Sharing Transport Addresses"):

=====================  ============  ============  ===================
second bind \\ first   no option     SO_REUSEADDR  SO_EXCLUSIVEADDRUSE
=====================  ============  ============  ===================
no option              WSAEADDRINUSE WSAEACCES     WSAEADDRINUSE
SO_REUSEADDR           WSAEACCES     succeeds      WSAEACCES
SO_EXCLUSIVEADDRUSE    WSAEADDRINUSE WSAEADDRINUSE WSAEADDRINUSE
=====================  ============  ============  ===================

Two ``SO_REUSEADDR`` sockets share the port whether or not the first one
listens: that is the port hijacking Microsoft warns about. Setting both
options on one socket fails with ``WSAEINVAL``.

:class:`WinsockStack` holds what is bound; :meth:`WinsockStack.module` is a
stand-in for the ``socket`` module as a Windows Python has it (Windows'
constants, ``SO_EXCLUSIVEADDRUSE``, no ``SO_REUSEPORT``), to put in place
of a module's ``socket`` with ``monkeypatch.setattr``. Errors are raised as
CPython raises them on Windows: ``OSError`` whose ``errno`` and
``winerror`` are the WSA code.
"""

from __future__ import annotations

import ipaddress
import socket as _real_socket
import types
from dataclasses import dataclass, field
from typing import Any

WSAEACCES = 10013
WSAEINVAL = 10022
WSAENOTSOCK = 10038
WSAENOPROTOOPT = 10042
WSAEADDRINUSE = 10048

# The values a Windows Python's socket module has (winsock2.h, ws2ipdef.h).
AF_INET = 2
AF_INET6 = 23
SOL_SOCKET = 0xFFFF
SO_REUSEADDR = 4
SO_EXCLUSIVEADDRUSE = ~SO_REUSEADDR
IPPROTO_IPV6 = 41
IPV6_V6ONLY = 27

_OPTION_NAMES = {
    SO_REUSEADDR: "SO_REUSEADDR",
    SO_EXCLUSIVEADDRUSE: "SO_EXCLUSIVEADDRUSE",
}

# (second socket's sharing option, first socket's) -> error, None = success.
_SAME_ADDRESS: dict[tuple[str | None, str | None], int | None] = {
    (None, None): WSAEADDRINUSE,
    (None, "SO_REUSEADDR"): WSAEACCES,
    (None, "SO_EXCLUSIVEADDRUSE"): WSAEADDRINUSE,
    # Before Windows Server 2003 this one succeeded too.
    ("SO_REUSEADDR", None): WSAEACCES,
    ("SO_REUSEADDR", "SO_REUSEADDR"): None,
    ("SO_REUSEADDR", "SO_EXCLUSIVEADDRUSE"): WSAEACCES,
    ("SO_EXCLUSIVEADDRUSE", None): WSAEADDRINUSE,
    ("SO_EXCLUSIVEADDRUSE", "SO_REUSEADDR"): WSAEADDRINUSE,
    ("SO_EXCLUSIVEADDRUSE", "SO_EXCLUSIVEADDRUSE"): WSAEADDRINUSE,
}

_EPHEMERAL_FIRST = 49152


def wsa_error(code: int, what: str) -> OSError:
    """An ``OSError`` as CPython raises it for a Winsock error."""
    exc = OSError(code, f"[WinError {code}] {what}")
    exc.winerror = code  # type: ignore[attr-defined]
    return exc


@dataclass
class WinsockStack:
    """The machine's bound TCP sockets, shared by every simulated program."""

    bound: list[WinsockSocket] = field(default_factory=list)
    created: list[WinsockSocket] = field(default_factory=list)
    _next_ephemeral: int = _EPHEMERAL_FIRST

    def socket(
        self, family: int = AF_INET, type: int = 1, proto: int = 0
    ) -> WinsockSocket:
        """A new unbound socket, like ``socket.socket(family, type)``."""
        sock = WinsockSocket(self, family, type)
        self.created.append(sock)
        return sock

    def module(self) -> types.ModuleType:
        """A ``socket`` module as on Windows, its sockets on this stack."""
        fake = types.ModuleType("socket")
        fake.__dict__.update(vars(_real_socket))
        fake.__dict__.pop("SO_REUSEPORT", None)  # Winsock has no such option
        fake.__dict__.update(
            socket=self.socket,
            has_ipv6=True,
            AF_INET=AF_INET,
            AF_INET6=AF_INET6,
            SOL_SOCKET=SOL_SOCKET,
            SO_REUSEADDR=SO_REUSEADDR,
            SO_EXCLUSIVEADDRUSE=SO_EXCLUSIVEADDRUSE,
            IPPROTO_IPV6=IPPROTO_IPV6,
            IPV6_V6ONLY=IPV6_V6ONLY,
        )
        return fake

    def holders(self, address: str, port: int) -> list[WinsockSocket]:
        """The open sockets bound to ``address`` and ``port``."""
        return [s for s in self.bound if s.address == (address, port)]

    def _bind(self, sock: WinsockSocket, address: str, port: int) -> int:
        # Limitation: only specific addresses are modelled; Windows decides
        # some wildcard (0.0.0.0, ::) cases by a check on the first owner.
        # Limitation: no connections, so no TIME_WAIT: a closed socket
        # frees its address at once.
        if ipaddress.ip_address(address).is_unspecified:
            raise NotImplementedError("wildcard binds are not simulated")
        if port == 0:
            port = self._next_ephemeral
            self._next_ephemeral += 1
        for held in self.holders(address, port):
            refused = _SAME_ADDRESS[(sock.sharing, held.sharing)]
            if refused is not None:
                raise wsa_error(refused, f"{address} port {port} is held")
        self.bound.append(sock)
        return port


class WinsockSocket:
    """A TCP socket of the simulation: options, bind, listen and close."""

    def __init__(self, stack: WinsockStack, family: int, type: int) -> None:
        self.stack = stack
        self.family = family
        self.type = type
        self.options: dict[tuple[int, int], int] = {}
        self.address: tuple[str, int] | None = None
        self.listening = False
        self.blocking = True
        self.closed = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"bound to {self.address}"
        return f"WinsockSocket({self.sharing or 'no option'}, {state})"

    def __enter__(self) -> WinsockSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def sharing(self) -> str | None:
        """The sharing option set, by name, or None."""
        for (level, name), value in self.options.items():
            if level == SOL_SOCKET and value and name in _OPTION_NAMES:
                return _OPTION_NAMES[name]
        return None

    def setsockopt(self, level: int, name: int, value: int) -> None:
        self._check_open()
        known = {
            (SOL_SOCKET, SO_REUSEADDR),
            (SOL_SOCKET, SO_EXCLUSIVEADDRUSE),
            (IPPROTO_IPV6, IPV6_V6ONLY),
        }
        if (level, name) not in known:
            raise wsa_error(WSAENOPROTOOPT, f"option {level}/{name} unknown")
        if level == IPPROTO_IPV6 and self.family != AF_INET6:
            raise wsa_error(WSAEINVAL, "IPV6_V6ONLY on an IPv4 socket")
        if level == SOL_SOCKET and value:
            other = self.sharing
            if other is not None and other != _OPTION_NAMES[name]:
                raise wsa_error(
                    WSAEINVAL, "SO_REUSEADDR and SO_EXCLUSIVEADDRUSE together"
                )
        self.options[(level, name)] = value

    def bind(self, address: tuple[Any, ...]) -> None:
        self._check_open()
        if self.address is not None:
            raise wsa_error(WSAEINVAL, "the socket is bound already")
        host, port = str(address[0]), int(address[1])
        version = ipaddress.ip_address(host).version
        if (version == 6) != (self.family == AF_INET6):
            raise wsa_error(WSAEINVAL, f"{host} is not of the socket's family")
        self.address = (host, self.stack._bind(self, host, port))

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self.address is None:
            raise wsa_error(WSAEINVAL, "listen before bind")
        self.listening = True

    def setblocking(self, flag: bool) -> None:
        self._check_open()
        self.blocking = flag

    def getsockname(self) -> tuple[Any, ...]:
        self._check_open()
        if self.address is None:
            raise wsa_error(WSAEINVAL, "the socket is not bound")
        if self.family == AF_INET6:
            return (*self.address, 0, 0)
        return self.address

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self in self.stack.bound:
            self.stack.bound.remove(self)

    def _check_open(self) -> None:
        if self.closed:
            raise wsa_error(WSAENOTSOCK, "the socket is closed")
