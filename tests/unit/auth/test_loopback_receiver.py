"""The loopback receiver over real sockets: RFC 8252 section 7.3 in practice."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest
import requests
from receiver_helpers import free_port, wait_in_thread

from sage_desktop.auth import LoopbackReceiver, map_callback_error
from sage_desktop.auth.receiver import ipv6_loopback_available
from sage_desktop.errors import (
    AccessDenied,
    AuthError,
    CallbackPortsBusy,
    CallbackTimeout,
    InvalidClient,
    RegionMismatch,
    SageUnavailable,
    SignInCancelled,
)

STATE = "the-state"


def _get(port: int, target: str, host: str = "127.0.0.1") -> requests.Response:
    return requests.get(f"http://{host}:{port}{target}", timeout=5)


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR as the next sign-in uses it: TIME_WAIT does not count.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_genuine_callback_returns_the_code_unquoted_exactly_once(
    receiver: LoopbackReceiver, port: int
) -> None:
    outcome = wait_in_thread(receiver)

    page = _get(port, f"/callback?code=GB%2Fab%2Bc%2520d&country=GB&state={STATE}")
    result = outcome.result(10)

    assert page.status_code == 200
    assert result.code == "GB/ab+c%20d"
    assert result.country == "GB"
    assert result.redirect_uri == f"http://localhost:{port}/callback"


def test_success_page_says_close_the_tab_and_never_echoes_the_code(
    receiver: LoopbackReceiver, port: int
) -> None:
    outcome = wait_in_thread(receiver)

    page = _get(port, f"/callback?code=SECRETCODE123&state={STATE}")
    outcome.result(10)

    assert "close this tab" in page.text
    assert "SECRETCODE123" not in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_port_is_released_after_success(receiver: LoopbackReceiver, port: int) -> None:
    outcome = wait_in_thread(receiver)
    _get(port, f"/callback?code=x&state={STATE}")
    outcome.result(10)

    assert _port_is_free(port)
    assert receiver.addresses == []


def test_other_paths_get_404_and_the_wait_goes_on(
    receiver: LoopbackReceiver, port: int
) -> None:
    outcome = wait_in_thread(receiver)

    assert _get(port, "/favicon.ico").status_code == 404
    assert _get(port, f"/CALLBACK?code=x&state={STATE}").status_code == 404
    assert _get(port, f"/callback/?code=x&state={STATE}").status_code == 404
    assert not outcome.done()

    _get(port, f"/callback?code=real&state={STATE}")
    assert outcome.result(10).code == "real"


@pytest.mark.parametrize(
    "query",
    [
        "code=forged",
        "code=forged&state=wrong",
        "code=forged&state=",
        f"code=forged&state={STATE}&state=other",
        f"code=forged&state={STATE}x",
        "error=access_denied&state=wrong",
        "error=access_denied",
    ],
)
def test_forged_callbacks_get_an_error_page_and_cannot_end_the_wait(
    receiver: LoopbackReceiver, port: int, query: str
) -> None:
    outcome = wait_in_thread(receiver)

    forged = _get(port, f"/callback?{query}")
    assert forged.status_code == 400
    assert "not the sign-in" in forged.text.lower()
    assert not outcome.done()

    _get(port, f"/callback?code=genuine&state={STATE}")
    assert outcome.result(10).code == "genuine"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("error=access_denied", AccessDenied),
        ("error=Invalid%20request&reason=Email%20already%20in%20use", RegionMismatch),
        ("error=Invalid+request&reason=Email+already+in+use", RegionMismatch),
        ("error=unauthorized_client", InvalidClient),
        ("error=server_error", SageUnavailable),
        ("error=invalid_scope", AuthError),
        ("error=something_new", AuthError),
    ],
)
def test_an_error_callback_ends_the_wait_with_the_mapped_error(
    receiver: LoopbackReceiver, port: int, query: str, expected: type[Exception]
) -> None:
    outcome = wait_in_thread(receiver)

    page = _get(port, f"/callback?{query}&state={STATE}")

    with pytest.raises(expected):
        outcome.result(10)
    assert page.status_code == 400
    assert _port_is_free(port)


def test_echoed_error_text_is_html_escaped(
    receiver: LoopbackReceiver, port: int
) -> None:
    outcome = wait_in_thread(receiver)

    page = _get(
        port, f"/callback?error=%3Cscript%3Ealert(1)%3C/script%3E&state={STATE}"
    )

    with pytest.raises(AuthError):
        outcome.result(10)
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_timeout_names_the_callback_urls_and_releases_the_port(port: int) -> None:
    uri = f"http://localhost:{port}/Callback"
    receiver = LoopbackReceiver([uri], STATE)
    receiver.start()

    with pytest.raises(CallbackTimeout) as caught:
        receiver.wait(timeout=0.2)

    assert uri in caught.value.remedy
    assert "case" in caught.value.explanation
    assert _port_is_free(port)


def test_cancel_from_another_thread_ends_the_wait_and_releases_the_port(
    receiver: LoopbackReceiver, port: int
) -> None:
    outcome = wait_in_thread(receiver, timeout=60)

    threading.Timer(0.1, receiver.cancel).start()

    with pytest.raises(SignInCancelled):
        outcome.result(10)
    assert _port_is_free(port)


def test_cancel_before_the_wait_ends_it_at_once(port: int) -> None:
    receiver = LoopbackReceiver([f"http://127.0.0.1:{port}/cb"], STATE)
    receiver.start()
    receiver.cancel()

    with pytest.raises(SignInCancelled):
        receiver.wait(timeout=60)


def test_a_busy_first_port_is_skipped_for_the_next_registered_url() -> None:
    busy, free = free_port(), free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", busy))
    holder.listen()
    try:
        receiver = LoopbackReceiver(
            [f"http://localhost:{busy}/callback", f"http://localhost:{free}/callback"],
            STATE,
        )
        with receiver:
            assert receiver.redirect_uri == f"http://localhost:{free}/callback"
    finally:
        holder.close()


def test_localhost_needs_both_addresses_free_else_the_next_url_is_used() -> None:
    if not ipv6_loopback_available():
        pytest.skip("no IPv6 loopback here")
    half, free = free_port(), free_port()
    holder = socket.socket(socket.AF_INET6)
    holder.bind(("::1", half))
    holder.listen()
    try:
        receiver = LoopbackReceiver(
            [f"http://localhost:{half}/callback", f"http://localhost:{free}/callback"],
            STATE,
        )
        with receiver:
            assert receiver.redirect_uri.endswith(f":{free}/callback")
    finally:
        holder.close()


def test_every_port_busy_raises_callback_ports_busy() -> None:
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        receiver = LoopbackReceiver([f"http://127.0.0.1:{port}/cb"], STATE)
        with pytest.raises(CallbackPortsBusy, match=str(port)):
            receiver.start()
    finally:
        holder.close()


def test_the_bind_is_exclusive_no_other_socket_can_share_the_port(
    receiver: LoopbackReceiver, port: int
) -> None:
    for option in ("SO_REUSEADDR", "SO_REUSEPORT"):
        if not hasattr(socket, option):
            continue
        intruder = socket.socket()
        intruder.setsockopt(socket.SOL_SOCKET, getattr(socket, option), 1)
        with pytest.raises(OSError, match="in use"):
            intruder.bind(("127.0.0.1", port))
        intruder.close()


def test_localhost_is_served_over_ipv6_too(
    receiver: LoopbackReceiver, port: int
) -> None:
    if not ipv6_loopback_available():
        pytest.skip("no IPv6 loopback here")
    outcome = wait_in_thread(receiver)

    assert ("::1", port) in receiver.addresses
    _get(port, f"/callback?code=over-v6&state={STATE}", host="[::1]")

    assert outcome.result(10).code == "over-v6"


def test_only_loopback_urls_are_bound() -> None:
    receiver = LoopbackReceiver(["http://192.0.2.1:8765/callback"], STATE)

    with pytest.raises(CallbackPortsBusy):
        receiver.start()


def test_huge_headers_get_431_and_the_wait_goes_on(
    receiver: LoopbackReceiver, port: int
) -> None:
    outcome = wait_in_thread(receiver)

    answer = _raw(port, b"GET /callback HTTP/1.1\r\nX: " + b"a" * 100_000)

    assert answer.startswith(b"HTTP/1.1 431")
    assert not outcome.done()
    _get(port, f"/callback?code=ok&state={STATE}")
    assert outcome.result(10).code == "ok"


def test_slow_and_idle_clients_do_not_block_the_genuine_callback(port: int) -> None:
    receiver = LoopbackReceiver(
        [f"http://localhost:{port}/callback"], STATE, max_connections=16
    )
    receiver.start()
    outcome = wait_in_thread(receiver)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    for sock in idle[:20]:
        sock.sendall(b"GET /callback?code=x&st")  # never finishes

    try:
        assert _get(port, f"/callback?code=fine&state={STATE}").status_code == 200
        assert outcome.result(10).code == "fine"
    finally:
        for sock in idle:
            sock.close()


def test_a_stalled_connection_is_dropped_after_its_deadline(port: int) -> None:
    receiver = LoopbackReceiver(
        [f"http://localhost:{port}/callback"], STATE, request_timeout=0.2
    )
    receiver.start()
    outcome = wait_in_thread(receiver)
    stalled = socket.create_connection(("127.0.0.1", port), timeout=5)
    stalled.sendall(b"GET /call")

    try:
        assert stalled.recv(10) == b""  # closed by the receiver
    finally:
        stalled.close()
        receiver.cancel()
    with pytest.raises(SignInCancelled):
        outcome.result(10)


def _garbage(rng: random.Random) -> bytes:
    kind = rng.randrange(9)
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == 0:
        return junk
    if kind == 1:
        return b"GET " + junk + b" HTTP/1.1\r\n\r\n"
    if kind == 2:
        return b"GET /callback?" + junk + b" HTTP/1.1\r\n\r\n"
    if kind == 3:
        return b"GET /callback?code=%ff%fe&state=%ZZ HTTP/1.1\r\n\r\n"
    if kind == 4:
        return b"POST /callback HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    if kind == 5:
        fields = b"&".join(b"a=%d" % i for i in range(rng.randrange(60, 200)))
        return b"GET /callback?" + fields + b" HTTP/1.1\r\n\r\n"
    if kind == 6:
        return (
            b"GET /callback?code=x&state=" + junk.hex().encode() + b" HTTP/1.0\r\n\r\n"
        )
    if kind == 7:
        return b"\r\n\r\n"
    return b"GET /callback?code=a&state=" + STATE.encode() + b"\x00 HTTP/9\r\n\r\n"


def test_thousands_of_malformed_requests_then_the_genuine_callback_works(
    receiver: LoopbackReceiver, port: int
) -> None:
    rng = random.Random(20261203)
    outcome = wait_in_thread(receiver, timeout=120)
    started = time.monotonic()

    for _ in range(2000):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(_garbage(rng))
            sock.shutdown(socket.SHUT_WR)
            try:
                answer = sock.recv(64)
            except ConnectionResetError:
                answer = b""
            assert not answer.startswith(b"HTTP/1.1 200")
        assert not outcome.done(), "a malformed request ended the wait"

    _get(port, f"/callback?code=after-the-storm&state={STATE}")
    assert outcome.result(10).code == "after-the-storm"
    assert time.monotonic() - started < 120


def test_error_mapping_recognises_sages_region_mismatch() -> None:
    error = map_callback_error("Invalid request", reason="Email already in use")

    assert isinstance(error, RegionMismatch)
