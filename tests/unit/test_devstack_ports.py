"""free_port: ports for child processes, away from the ports the kernel hands out itself."""

from __future__ import annotations

import socket

from shared import devstack


def test_free_ports_lie_below_the_ephemeral_range_and_are_not_repeated() -> None:
    ports = [devstack.free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    low = devstack._ephemeral_low()
    assert all(port < low for port in ports), (ports, low)
    for port in ports:
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))  # still free: nothing else was given it


def test_a_port_in_use_is_not_handed_out(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        taken = busy.getsockname()[1]
        busy.listen()
        monkeypatch.setattr(devstack, "_LISTEN_PORTS", range(taken, taken + 1))
        monkeypatch.setattr(devstack, "_ephemeral_low", lambda: 65536)
        # The only candidate is busy: the kernel's choice is the fallback, never the busy port.
        assert devstack.free_port() != taken
