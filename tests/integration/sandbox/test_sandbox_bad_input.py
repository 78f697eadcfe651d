"""Bad input never crashes the sandbox: each gets Sage's error shape for
its path, and the server keeps serving."""

from __future__ import annotations

import json
import random
import socket
from urllib.parse import quote

import pytest
import requests
from sandbox_helpers import assert_oauth_error, token_call

from sage_desktop.sandbox import DEMO, Sandbox, SandboxConfig

FORM_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
}


def raw(sb: Sandbox, payload: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes; return whatever comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", sb.port), timeout=timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def still_serving(sb: Sandbox) -> bool:
    response = requests.get(sb.control_url + "/health", timeout=5)
    return response.status_code == 200


def post_token_body(sb: Sandbox, body: bytes) -> requests.Response:
    return requests.post(sb.token_url, data=body, headers=FORM_HEADERS, timeout=5)


def client_fields() -> str:
    return (
        f"client_id={quote(DEMO.client_id, safe='')}"
        f"&client_secret={quote(DEMO.client_secret, safe='')}"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type",
        b"grant_type=refresh_token&&&",
        b"=novalue",
        b"grant_type=%zz",
        b"grant_type=refresh_token&refresh_token=%ff%fe",
        "grant_type=refresh_token&refresh_token=é".encode(),
        b"\x00\x01\x02\xff",
    ],
)
def test_malformed_form_bodies_are_invalid_request(sb: Sandbox, body: bytes) -> None:
    response = post_token_body(sb, body)

    assert_oauth_error(response, 400, "invalid_request")
    assert still_serving(sb)


def test_a_repeated_field_is_invalid_request(sb: Sandbox) -> None:
    body = f"grant_type=refresh_token&refresh_token=a&refresh_token=b&{client_fields()}"

    assert_oauth_error(post_token_body(sb, body.encode()), 400, "invalid_request")


def test_a_repeated_grant_type_is_invalid_request(sb: Sandbox) -> None:
    body = f"grant_type=password&grant_type=refresh_token&{client_fields()}"

    assert_oauth_error(post_token_body(sb, body.encode()), 400, "invalid_request")


def test_missing_code_is_invalid_request(sb: Sandbox) -> None:
    response = token_call(sb, {"grant_type": "authorization_code"})

    assert_oauth_error(response, 400, "invalid_request")


def test_missing_refresh_token_is_invalid_request(sb: Sandbox) -> None:
    response = token_call(sb, {"grant_type": "refresh_token"})

    assert_oauth_error(response, 400, "invalid_request")


def test_a_huge_parameter_is_invalid_request(sb: Sandbox) -> None:
    response = token_call(
        sb, {"grant_type": "refresh_token", "refresh_token": "x" * 40_000}
    )

    assert_oauth_error(response, 400, "invalid_request")


def test_a_huge_body_is_refused_with_413(sb: Sandbox) -> None:
    response = post_token_body(sb, b"a=" + b"x" * 200_000)

    assert_oauth_error(response, 413, "invalid_request")
    assert still_serving(sb)


def test_bad_framing_on_the_api_gets_sages_error_array(sb: Sandbox) -> None:
    answer = raw(sb, b"GET /v3.1/user HTTP/1.1\r\nContent-Length: x\r\n\r\n")

    head, _, body = answer.partition(b"\r\n\r\n")
    assert b" 400 " in head.split(b"\r\n", 1)[0]
    assert json.loads(body)[0]["$dataCode"] == "BadRequest"


def test_a_huge_authorize_parameter_gets_an_error_page(sb: Sandbox) -> None:
    response = requests.get(sb.auth_url + "&state=" + "x" * 30_000, timeout=5)

    assert response.status_code == 400
    assert 'data-step="error"' in response.text


def test_an_over_long_request_line_is_refused_and_the_server_lives(
    sb: Sandbox,
) -> None:
    answer = raw(sb, b"GET /?" + b"x" * 70_000 + b" HTTP/1.1\r\n\r\n")

    # The server answers 414 and hangs up; the client may see the reset.
    assert answer == b"" or b" 414 " in answer.split(b"\r\n", 1)[0]
    assert still_serving(sb)


def test_non_utf8_authorize_parameters_get_an_error_page(sb: Sandbox) -> None:
    response = requests.get(sb.auth_url + "&client_id=%ff%fe", timeout=5)

    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")


def test_repeated_authorize_parameters_get_an_error_page(sb: Sandbox) -> None:
    url = (
        f"{sb.auth_url}&client_id={quote(DEMO.client_id, safe='')}"
        f"&redirect_uri={quote(DEMO.redirect_uris[0], safe='')}"
        f"&redirect_uri={quote(DEMO.redirect_uris[1], safe='')}"
    )

    response = requests.get(url, allow_redirects=False, timeout=5)

    assert response.status_code == 400
    assert "Location" not in response.headers


def test_garbage_on_the_socket_gets_a_400_and_the_server_lives(
    sb: Sandbox,
) -> None:
    answer = raw(sb, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")

    assert answer.startswith(b"HTTP/1.") or answer == b""
    if answer:
        assert b" 400 " in answer.split(b"\r\n", 1)[0]
    assert still_serving(sb)


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: abc\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Transfer-Encoding: chunked\r\n",
    ],
)
def test_bad_body_framing_is_refused(sb: Sandbox, headers: bytes) -> None:
    answer = raw(sb, b"POST /token HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")

    status = answer.split(b"\r\n", 1)[0]
    assert status.split(b" ")[1] in (b"400", b"411")
    assert still_serving(sb)


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(socket_timeout=0.3)])
def test_a_stalled_client_is_disconnected(sb: Sandbox) -> None:
    with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as sock:
        sock.sendall(b"POST /token HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")

        assert sock.recv(1024) == b""
    assert still_serving(sb)


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(socket_timeout=0.3)])
def test_an_idle_connection_is_closed(sb: Sandbox) -> None:
    with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as sock:
        assert sock.recv(1024) == b""


def test_seeded_fuzz_never_breaks_the_server(sb: Sandbox) -> None:
    rng = random.Random(1234)
    valid = (f"grant_type=refresh_token&refresh_token=abc&{client_fields()}").encode()
    alphabet = b"=&%+;abcXYZ019\x00\xff\xc3\xa9 \r\n"

    for _ in range(120):
        kind = rng.randrange(3)
        if kind == 0:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            answer = raw(sb, body, timeout=5)
            assert answer == b"" or answer.startswith(b"HTTP/")
            continue
        if kind == 1:
            body = bytearray(valid)
            for _ in range(rng.randrange(1, 8)):
                body[rng.randrange(len(body))] = rng.choice(alphabet)
        else:
            body = bytearray(rng.choice(alphabet) for _ in range(rng.randrange(200)))
        response = post_token_body(sb, bytes(body))
        assert response.status_code in (400, 401), response.text
        assert set(response.json()) == {"error", "error_description"}

    assert still_serving(sb)
    assert sb.issue_tokens(DEMO.accountant)["token_type"] == "bearer"
