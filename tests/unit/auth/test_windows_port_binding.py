"""The receiver's Windows binding, run against a simulation of Winsock.

Linux cannot run Winsock, so these tests put ``winsock_sim`` in place of
the receiver's ``socket`` module and say ``sys.platform`` is ``win32``;
``_bind`` and :class:`LoopbackReceiver` run unchanged. The simulation
follows Microsoft's "Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE".
"""

from __future__ import annotations

import sys

import pytest
import winsock_sim
from winsock_sim import (
    SO_EXCLUSIVEADDRUSE,
    SO_REUSEADDR,
    SOL_SOCKET,
    WSAEACCES,
    WSAEADDRINUSE,
    WSAEINVAL,
    WinsockSocket,
    WinsockStack,
)

from sage_desktop.auth import LoopbackReceiver, receiver
from sage_desktop.errors import CallbackPortsBusy

STATE = "the-state"
PORT = 8765
OTHER_PORT = 8766


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> WinsockStack:
    """A simulated Windows machine that the receiver binds on."""
    stack = WinsockStack()
    # The receiver's own ``socket`` name only: patching socket.socket itself
    # would also turn the receiver's socketpair() wake-up pipe into fakes.
    monkeypatch.setattr(receiver, "socket", stack.module())
    monkeypatch.setattr(sys, "platform", "win32")
    # Probe IPv6 on the simulated machine, not on this one.
    monkeypatch.setattr(receiver, "_ipv6_cache", None)
    return stack


def _other_program(
    stack: WinsockStack, address: str, port: int, option: int | None
) -> WinsockSocket:
    family = winsock_sim.AF_INET6 if ":" in address else winsock_sim.AF_INET
    sock = stack.socket(family)
    if option is not None:
        sock.setsockopt(SOL_SOCKET, option, 1)
    sock.bind((address, port))
    sock.listen(5)
    return sock


def _receiver_sockets(stack: WinsockStack) -> list[WinsockSocket]:
    return [s for s in stack.bound if s.listening and s.blocking is False]


def test_on_windows_the_receiver_asks_for_exclusive_use_and_nothing_else(
    windows: WinsockStack,
) -> None:
    with LoopbackReceiver([f"http://localhost:{PORT}/callback"], STATE):
        listeners = _receiver_sockets(windows)

        bound = [s.address for s in listeners]
        assert bound == [("127.0.0.1", PORT), ("::1", PORT)]
        for sock in listeners:
            assert sock.options[(SOL_SOCKET, SO_EXCLUSIVEADDRUSE)] == 1
            assert (SOL_SOCKET, SO_REUSEADDR) not in sock.options
            assert sock.sharing == "SO_EXCLUSIVEADDRUSE"


@pytest.mark.parametrize(
    ("option", "refused_with"),
    [
        (SO_REUSEADDR, WSAEACCES),
        (None, WSAEADDRINUSE),
        (SO_EXCLUSIVEADDRUSE, WSAEADDRINUSE),
    ],
    ids=["SO_REUSEADDR", "no-option", "SO_EXCLUSIVEADDRUSE"],
)
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_no_other_program_can_bind_the_port_the_receiver_holds_on_windows(
    windows: WinsockStack, address: str, option: int | None, refused_with: int
) -> None:
    with LoopbackReceiver([f"http://localhost:{PORT}/callback"], STATE):
        refusal = f"WinError {refused_with}"
        with pytest.raises(OSError, match=refusal) as refused:
            _other_program(windows, address, PORT, option)

        assert refused.value.errno == refused_with
        assert [s.sharing for s in windows.holders(address, PORT)] == [
            "SO_EXCLUSIVEADDRUSE"
        ]


def test_with_the_linux_choice_another_program_could_hijack_the_port() -> None:
    # Why _exclusive branches on the platform: SO_REUSEADDR, harmless on
    # Linux, lets a second program bind a listening port on Windows.
    stack = WinsockStack()
    as_on_linux = _other_program(stack, "127.0.0.1", PORT, SO_REUSEADDR)

    hijacker = _other_program(stack, "127.0.0.1", PORT, SO_REUSEADDR)

    assert stack.holders("127.0.0.1", PORT) == [as_on_linux, hijacker]
    assert hijacker.listening


@pytest.mark.parametrize(
    "option",
    [None, SO_REUSEADDR, SO_EXCLUSIVEADDRUSE],
    ids=["no-option", "SO_REUSEADDR", "SO_EXCLUSIVEADDRUSE"],
)
@pytest.mark.parametrize("held", ["127.0.0.1", "::1"])
def test_a_port_held_on_either_loopback_address_sends_the_receiver_on(
    windows: WinsockStack, held: str, option: int | None
) -> None:
    holder = _other_program(windows, held, PORT, option)
    uris = [
        f"http://localhost:{PORT}/callback",
        f"http://localhost:{OTHER_PORT}/callback",
    ]

    with LoopbackReceiver(uris, STATE) as rec:
        assert rec.redirect_uri == uris[1]
        assert sorted(rec.addresses) == [
            ("127.0.0.1", OTHER_PORT),
            ("::1", OTHER_PORT),
        ]
        # The half it did bind on the busy port was let go again.
        on_busy_port = [
            *windows.holders("127.0.0.1", PORT),
            *windows.holders("::1", PORT),
        ]
        assert on_busy_port == [holder]


def test_every_port_held_on_windows_is_reported_busy(
    windows: WinsockStack,
) -> None:
    _other_program(windows, "127.0.0.1", PORT, SO_REUSEADDR)
    _other_program(windows, "::1", OTHER_PORT, None)
    uris = [f"http://localhost:{PORT}/cb", f"http://localhost:{OTHER_PORT}/cb"]
    rec = LoopbackReceiver(uris, STATE)

    with pytest.raises(CallbackPortsBusy, match=f"{PORT}.*{OTHER_PORT}"):
        rec.start()

    assert len(windows.bound) == 2


def test_closing_the_receiver_frees_the_port_on_windows(
    windows: WinsockStack,
) -> None:
    rec = LoopbackReceiver([f"http://localhost:{PORT}/callback"], STATE)
    rec.start()

    rec.close()

    assert windows.bound == []
    for address in ("127.0.0.1", "::1"):
        _other_program(windows, address, PORT, SO_EXCLUSIVEADDRUSE)


# --- the simulation itself follows Microsoft's table -----------------------


@pytest.mark.parametrize(
    ("first", "second", "outcome"),
    [
        (None, None, WSAEADDRINUSE),
        (SO_REUSEADDR, None, WSAEACCES),
        (SO_EXCLUSIVEADDRUSE, None, WSAEADDRINUSE),
        (None, SO_REUSEADDR, WSAEACCES),
        (SO_REUSEADDR, SO_REUSEADDR, None),
        (SO_EXCLUSIVEADDRUSE, SO_REUSEADDR, WSAEACCES),
        (None, SO_EXCLUSIVEADDRUSE, WSAEADDRINUSE),
        (SO_REUSEADDR, SO_EXCLUSIVEADDRUSE, WSAEADDRINUSE),
        (SO_EXCLUSIVEADDRUSE, SO_EXCLUSIVEADDRUSE, WSAEADDRINUSE),
    ],
)
def test_the_simulation_decides_a_second_bind_as_microsoft_documents(
    first: int | None, second: int | None, outcome: int | None
) -> None:
    stack = WinsockStack()
    _other_program(stack, "127.0.0.1", PORT, first)

    if outcome is None:
        _other_program(stack, "127.0.0.1", PORT, second)
        assert len(stack.holders("127.0.0.1", PORT)) == 2
    else:
        with pytest.raises(OSError, match=f"WinError {outcome}") as refused:
            _other_program(stack, "127.0.0.1", PORT, second)
        assert refused.value.errno == outcome
        assert refused.value.winerror == outcome  # type: ignore[attr-defined]


def test_the_simulation_refuses_both_sharing_options_on_one_socket() -> None:
    sock = WinsockStack().socket()
    sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)

    with pytest.raises(OSError, match=f"WinError {WSAEINVAL}") as refused:
        sock.setsockopt(SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1)

    assert refused.value.errno == WSAEINVAL


def test_the_simulated_socket_module_has_no_so_reuseport() -> None:
    module = WinsockStack().module()

    assert not hasattr(module, "SO_REUSEPORT")
    assert module.SO_EXCLUSIVEADDRUSE == ~module.SO_REUSEADDR
