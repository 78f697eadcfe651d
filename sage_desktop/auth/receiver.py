"""The loopback receiver: where the browser brings Sage's answer back.

RFC 8252 section 7.3: a native app receives the authorization response on
a loopback port. Sage matches callback URLs exactly, so the receiver tries
the registered URLs in order and takes the first whose port is free.

Binding is exclusive, so no other program can listen on the same port and
read the code: ``SO_EXCLUSIVEADDRUSE`` on Windows (where ``SO_REUSEADDR``
would let another socket share the port), ``SO_REUSEADDR`` on Linux and
macOS (it only allows reuse of a port in TIME_WAIT, never a second
listener), and never ``SO_REUSEPORT``. ``localhost`` is served on 127.0.0.1
and on ::1 where the machine has IPv6, whichever the browser resolves.

The receiver is one thread running a ``selectors`` loop. Each connection
has a size cap and a deadline, and the oldest connection is dropped when
too many are open, so garbage, huge headers, slow clients or floods can
neither crash it nor keep the genuine callback out. Only the callback path
is answered; a wrong or missing ``state`` gets an error page and the wait
goes on (RFC 6749 section 10.12), so a forged request can neither end nor
hijack the sign-in.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import html
import ipaddress
import logging
import selectors
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, unquote_plus, urlsplit

from sage_desktop.errors import (
    AccessDenied,
    AuthError,
    CallbackPortsBusy,
    CallbackTimeout,
    InvalidClient,
    RegionMismatch,
    SageDesktopError,
    SageUnavailable,
    SignInCancelled,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0
MAX_REQUEST_BYTES = 16 * 1024
MAX_CONNECTIONS = 128
REQUEST_TIMEOUT = 10.0
MAX_QUERY_FIELDS = 64
LINGER = 1.0

_LISTENER = "listener"
_WAKE = "wake"


@dataclass(frozen=True)
class CallbackResult:
    """The genuine callback: the code (unquoted once, never shown) and more.

    ``country`` is Sage's region for the signed-in user (``GB``, ``US``...).
    """

    code: str = field(repr=False)
    redirect_uri: str
    country: str | None = None


def map_callback_error(
    error: str, reason: str = "", description: str = ""
) -> SageDesktopError:
    """Turn an ``error=`` callback (RFC 6749 section 4.1.2.1) into our errors.

    Sage reports a region mismatch as ``error=Invalid request&reason=Email
    already in use``; ``access_denied`` is the user refusing consent.
    """
    lowered = error.strip().lower()
    detail = f"{reason} {description}".lower()
    if lowered == "access_denied":
        return AccessDenied()
    if "email already in use" in detail or "email already in use" in lowered:
        return RegionMismatch()
    if lowered == "unauthorized_client":
        return InvalidClient()
    if lowered in ("server_error", "temporarily_unavailable"):
        return SageUnavailable(
            f"Sage's sign-in service had a temporary problem ({_printable(error)})."
        )
    if lowered == "invalid_scope":
        return AuthError(
            "Sage refused the access the app asked for (invalid_scope).",
            remedy="Use the scope full_access or readonly, then sign in again.",
        )
    said = _printable(error)
    if reason or description:
        said += ": " + _printable(reason or description)
    return AuthError(
        f"Sage reported a problem at sign-in ({said}).",
        remedy="Sign in again; if it repeats, run 'sage-desktop doctor'.",
    )


def _printable(text: str, limit: int = 120) -> str:
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned[:limit]


class _Connection:
    __slots__ = ("accepted", "addr", "buf", "deadline", "draining", "out", "sock")

    def __init__(self, sock: socket.socket, addr: object, deadline: float) -> None:
        self.sock = sock
        self.addr = addr
        self.buf = bytearray()
        self.out = b""
        self.draining = False
        self.deadline = deadline
        self.accepted = time.monotonic()


class LoopbackReceiver:
    """Waits for Sage's redirect on the first free registered callback URL.

    Use it as a context manager, or call :meth:`start`, then :meth:`wait`
    (which always releases the port before returning or raising), and
    :meth:`cancel` from any thread to stop a wait early.
    """

    def __init__(
        self,
        redirect_uris: Sequence[str],
        state: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        request_timeout: float = REQUEST_TIMEOUT,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        if not redirect_uris:
            raise ValueError("at least one callback URL is needed")
        if not state:
            raise ValueError("state must not be empty")
        self._uris = tuple(redirect_uris)
        self._state = state
        self._timeout = timeout
        self._max_connections = max_connections
        self._request_timeout = request_timeout
        self._max_request_bytes = max_request_bytes

        self._listeners: list[socket.socket] = []
        self._redirect_uri: str | None = None
        self._path = ""
        self._cancelled = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._closed = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LoopbackReceiver({self._redirect_uri or 'not started'})"

    def __enter__(self) -> LoopbackReceiver:
        if self._redirect_uri is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def redirect_uri(self) -> str:
        """The callback URL in use, exactly as registered (send it as is)."""
        if self._redirect_uri is None:
            raise RuntimeError("the receiver is not started")
        return self._redirect_uri

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) pairs listened on; empty once closed."""
        return [s.getsockname()[:2] for s in self._listeners]

    def start(self) -> str:
        """Bind the first registered callback URL whose port is free.

        Raises :class:`CallbackPortsBusy` when every one is taken.
        """
        if self._closed:
            raise RuntimeError("the receiver is closed")
        busy: list[str] = []
        for uri in self._uris:
            sockets = _bind(uri)
            if sockets:
                self._listeners = sockets
                self._redirect_uri = uri
                self._path = urlsplit(uri).path or "/"
                log.info("waiting for Sage's callback on %s", uri)
                return uri
            busy.append(uri)
        self.close()
        raise CallbackPortsBusy(
            "Every registered callback port is held by another program: "
            + ", ".join(busy)
            + "."
        )

    def cancel(self) -> None:
        """End :meth:`wait` with :class:`SignInCancelled`; safe from any thread."""
        self._cancelled.set()
        # Closed already, or the wake buffer is full: both are fine.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def close(self) -> None:
        """Release the port(s). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for sock in self._listeners:
            sock.close()
        self._listeners = []
        self._wake_r.close()
        self._wake_w.close()

    def wait(self, timeout: float | None = None) -> CallbackResult:
        """Serve requests until the genuine callback, an error, a timeout or
        a cancel. The port is released in every case.

        Raises :class:`CallbackTimeout` (with the callback URL to register),
        :class:`SignInCancelled`, or the mapped ``error=`` of the callback.
        """
        if self._redirect_uri is None:
            self.start()
        limit = self._timeout if timeout is None else timeout
        try:
            return self._serve(time.monotonic() + limit, limit)
        finally:
            self.close()

    # --- the loop -----------------------------------------------------------

    def _serve(self, deadline: float, limit: float) -> CallbackResult:
        selector = selectors.DefaultSelector()
        conns: dict[int, _Connection] = {}
        try:
            for sock in self._listeners:
                selector.register(sock, selectors.EVENT_READ, _LISTENER)
            selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
            while True:
                if self._cancelled.is_set():
                    log.info("sign-in cancelled; callback port released")
                    raise SignInCancelled()
                now = time.monotonic()
                if now >= deadline:
                    raise self._timeout_error(limit)
                self._expire(selector, conns, now)

                wake_at = min([deadline, *(c.deadline for c in conns.values())])
                events = selector.select(max(0.0, wake_at - now))
                for key, mask in events:
                    if key.data == _LISTENER:
                        self._accept(key.fileobj, selector, conns)  # type: ignore[arg-type]
                    elif key.data == _WAKE:
                        _drain(self._wake_r)
                    else:
                        conn = conns.get(key.fd)
                        if conn is None:
                            continue
                        outcome = self._on_ready(conn, mask, selector, conns)
                        if outcome is not None:
                            if isinstance(outcome, CallbackResult):
                                return outcome
                            raise outcome
        finally:
            for conn in list(conns.values()):
                _close_conn(selector, conns, conn)
            selector.close()

    def _timeout_error(self, limit: float) -> CallbackTimeout:
        log.warning("no callback within %.0f s; callback port released", limit)
        registered = "\n  ".join(self._uris)
        return CallbackTimeout(
            f"The browser never came back to the app within {limit:g} "
            f"seconds. Usually the callback URL sent ({self._redirect_uri}) "
            "is not registered in Sage exactly as written, case included.",
            remedy=(
                "In Sage's developer portal, register these callback URLs "
                f"exactly, case included:\n  {registered}\nthen sign in again."
            ),
        )

    def _expire(
        self,
        selector: selectors.BaseSelector,
        conns: dict[int, _Connection],
        now: float,
    ) -> None:
        for conn in [c for c in conns.values() if c.deadline <= now]:
            log.debug("dropping a callback connection that stalled")
            _close_conn(selector, conns, conn)

    def _accept(
        self,
        listener: socket.socket,
        selector: selectors.BaseSelector,
        conns: dict[int, _Connection],
    ) -> None:
        for _ in range(64):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # Out of file descriptors: make room by dropping the oldest.
                log.warning("accept failed (%s); dropping the oldest", exc.errno)
                if conns:
                    oldest = min(conns.values(), key=lambda c: c.accepted)
                    _close_conn(selector, conns, oldest)
                return
            if len(conns) >= self._max_connections:
                oldest = min(conns.values(), key=lambda c: c.accepted)
                _close_conn(selector, conns, oldest)
            sock.setblocking(False)
            conn = _Connection(sock, addr, time.monotonic() + self._request_timeout)
            conns[sock.fileno()] = conn
            selector.register(sock, selectors.EVENT_READ, "conn")

    def _on_ready(
        self,
        conn: _Connection,
        mask: int,
        selector: selectors.BaseSelector,
        conns: dict[int, _Connection],
    ) -> CallbackResult | SageDesktopError | None:
        if mask & selectors.EVENT_WRITE:
            self._flush(conn, selector, conns)
            return None
        try:
            chunk = conn.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            _close_conn(selector, conns, conn)
            return None
        if not chunk:
            _close_conn(selector, conns, conn)
            return None
        if conn.draining:
            return None  # the answer is sent; discard what the client still sends
        conn.buf += chunk

        end = _head_end(conn.buf)
        if end < 0:
            if len(conn.buf) > self._max_request_bytes:
                self._respond(
                    conn, 431, _page("Request too large", ""), selector, conns
                )
            return None
        if end > self._max_request_bytes:
            self._respond(conn, 431, _page("Request too large", ""), selector, conns)
            return None

        status, body, outcome = self._handle(bytes(conn.buf[:end]))
        if outcome is None:
            self._respond(conn, status, body, selector, conns)
        else:
            self._respond_final(conn, status, body)
            _close_conn(selector, conns, conn)
        return outcome

    def _handle(
        self, head: bytes
    ) -> tuple[int, bytes, CallbackResult | SageDesktopError | None]:
        """One request head -> (status, page, outcome that ends the wait)."""
        line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, _page("Bad request", ""), None
        method, target, _version = parts
        if method != "GET":  # the redirect is always a GET (RFC 6749 4.1.2)
            return 405, _page("Method not allowed", ""), None
        if target.startswith(("http://", "https://")):
            split = urlsplit(target)
            target = split.path + ("?" + split.query if split.query else "")
        path, _, query = target.partition("?")
        query = query.split("#", 1)[0]
        if path != self._path:
            return 404, _page("Not found", ""), None

        try:
            params = _parse_query(query)
        except ValueError:
            return 400, _page("Bad request", "The address is malformed."), None

        states = params.get("state", [])
        if len(states) != 1 or not hmac.compare_digest(
            states[0].encode("utf-8"), self._state.encode("utf-8")
        ):
            log.warning("ignored a callback with a wrong or missing state")
            return (
                400,
                _page(
                    "Not the sign-in sage-desktop is waiting for",
                    "This answer does not belong to the sign-in in progress, "
                    "so it was ignored. If you started a sign-in, finish it "
                    "in the window sage-desktop opened.",
                ),
                None,
            )

        errors = params.get("error")
        if errors:
            reason = " ".join(params.get("reason", []))
            description = " ".join(params.get("error_description", []))
            mapped = map_callback_error(errors[0], reason, description)
            log.warning("Sage's callback reported an error: %s", mapped.title)
            return 400, _page(mapped.title, mapped.explanation, mapped.remedy), mapped

        codes = params.get("code", [])
        if len(codes) != 1 or not codes[0]:
            mapped = AuthError(
                "Sage's answer had neither a sign-in code nor an error.",
                remedy="Sign in again.",
            )
            return 400, _page(mapped.title, mapped.explanation), mapped

        countries = params.get("country", [])
        result = CallbackResult(
            code=codes[0],
            redirect_uri=self.redirect_uri,
            country=countries[0] if countries else None,
        )
        log.info("received Sage's callback")
        page = _page(
            "Signed in to Sage",
            "sage-desktop received your sign-in. You can close this tab and "
            "return to the app.",
        )
        return 200, page, result

    def _respond(
        self,
        conn: _Connection,
        status: int,
        body: bytes,
        selector: selectors.BaseSelector,
        conns: dict[int, _Connection],
    ) -> None:
        conn.out = _response(status, body)
        conn.buf = bytearray()
        selector.modify(conn.sock, selectors.EVENT_WRITE, "conn")
        self._flush(conn, selector, conns)

    def _flush(
        self,
        conn: _Connection,
        selector: selectors.BaseSelector,
        conns: dict[int, _Connection],
    ) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            _close_conn(selector, conns, conn)
            return
        conn.out = conn.out[sent:]
        if conn.out:
            return
        # Lingering close: half-close and discard the rest of the request
        # for a moment, so the client reads the answer instead of a reset.
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            _close_conn(selector, conns, conn)
            return
        conn.draining = True
        conn.deadline = min(conn.deadline, time.monotonic() + LINGER)
        selector.modify(conn.sock, selectors.EVENT_READ, "conn")

    def _respond_final(self, conn: _Connection, status: int, body: bytes) -> None:
        """The page that ends the wait: sent in full (bounded in time)."""
        try:
            conn.sock.settimeout(2.0)
            conn.sock.sendall(_response(status, body))
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            log.debug("the browser left before the last page was sent")


# --- helpers ----------------------------------------------------------------


def _head_end(buf: bytearray) -> int:
    end = buf.find(b"\r\n\r\n")
    if end >= 0:
        return end
    return buf.find(b"\n\n")


def _parse_query(query: str) -> dict[str, list[str]]:
    """Split a query, unquoting each value exactly once.

    ``code`` and ``state`` are decoded with :func:`unquote` (a ``+`` stays a
    ``+``), so the code goes back to Sage unchanged; human texts (``error``,
    ``reason``) also turn ``+`` into spaces. Raises ``ValueError`` for bad
    UTF-8 or too many fields.
    """
    params: dict[str, list[str]] = {}
    if not query:
        return params
    pieces = query.split("&")
    if len(pieces) > MAX_QUERY_FIELDS:
        raise ValueError("too many fields")
    for piece in pieces:
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition("=")
        name = unquote_plus(raw_name, errors="strict")
        if name in ("code", "state"):
            value = unquote(raw_value, errors="strict")
        else:
            value = unquote_plus(raw_value, errors="strict")
        params.setdefault(name, []).append(value)
    return params


def _page(title: str, message: str, remedy: str = "") -> bytes:
    """A small self-contained HTML page; every text is escaped."""
    remedy_html = f"<p><b>What to do:</b> {html.escape(remedy)}</p>" if remedy else ""
    text = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)} - sage-desktop</title>"
        "<style>body{font-family:sans-serif;margin:3em auto;max-width:36em;"
        "line-height:1.5}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        f"{remedy_html}</body></html>"
    )
    return text.encode("utf-8")


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
}


def _response(status: int, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _close_conn(
    selector: selectors.BaseSelector,
    conns: dict[int, _Connection],
    conn: _Connection,
) -> None:
    fd = conn.sock.fileno()
    conns.pop(fd, None)
    with contextlib.suppress(KeyError, ValueError):
        selector.unregister(conn.sock)
    conn.sock.close()


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(256):
            pass
    except (BlockingIOError, InterruptedError, OSError):
        pass


_ipv6_cache: bool | None = None


def ipv6_loopback_available() -> bool:
    """True when this machine can listen on ::1 (cached after the first call)."""
    global _ipv6_cache
    if _ipv6_cache is None:
        _ipv6_cache = False
        if socket.has_ipv6:
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
                    probe.bind(("::1", 0))
                _ipv6_cache = True
            except OSError:
                _ipv6_cache = False
    return _ipv6_cache


def _addresses(host: str) -> list[tuple[socket.AddressFamily, str]]:
    host = host.lower().strip("[]")
    if host == "localhost":
        found = [(socket.AF_INET, "127.0.0.1")]
        if ipv6_loopback_available():
            found.append((socket.AF_INET6, "::1"))
        return found
    ip = ipaddress.ip_address(host)
    if not ip.is_loopback:
        raise ValueError(f"{host} is not a loopback address")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return [(family, str(ip))]


def _exclusive(sock: socket.socket) -> None:
    """Make the bind exclusive (see the module docstring)."""
    if sys.platform == "win32":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
    else:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def _bind(uri: str) -> list[socket.socket]:
    """Listen on every address of ``uri``'s host, or on none (port busy)."""
    parts = urlsplit(uri)
    port = parts.port
    try:
        addresses = _addresses(parts.hostname or "")
    except ValueError:
        log.warning("skipping %s: not a loopback callback URL", uri)
        return []
    if port is None:
        log.warning("skipping %s: it names no port", uri)
        return []

    sockets: list[socket.socket] = []
    try:
        for family, address in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            _exclusive(sock)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address, port))
            sock.listen(128)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        reason = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        log.info("callback port %d is not usable (%s); trying the next", port, reason)
        return []
    return sockets
