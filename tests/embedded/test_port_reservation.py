"""Ports a stack chooses for itself are reserved against every other paychaos process.

CI once saw another stack's exporter answer on the port one stack had chosen for
Prometheus, between the choice and the bind. The ports now come from below the
kernel's ephemeral range and are reserved by an abstract Unix socket per port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import astuple

from paychaos.stack.embedded import StackPorts
from paychaos.stack.service import _ephemeral_low, reserve_free_port


def test_auto_ports_are_distinct_below_the_ephemeral_range_and_above_the_readme_bases():
    for _ in range(20):
        ports = astuple(StackPorts.auto())
        assert len(set(ports)) == len(ports)
        assert all(p < _ephemeral_low() for p in ports), ports
        # `paychaos up --port-base 20000 / 23000` (README, tests/targets) stay clear
        assert not [p for p in ports if 20_000 <= p < 23_100], ports


def test_a_reserved_port_is_not_handed_to_another_process():
    port = reserve_free_port()
    # the reservation is visible to any process: its abstract name is taken
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            probe.bind(f"\0paychaos-port-{port}")
            taken = False
        except OSError:
            taken = True
    finally:
        probe.close()
    assert taken, f"port {port} is not reserved"
    # another process choosing many ports never gets this one
    code = (
        "from paychaos.stack.service import reserve_free_port\n"
        "print(' '.join(str(reserve_free_port()) for _ in range(300)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert len(out) == 300 and len(set(out)) == 300
    assert str(port) not in out


def test_a_port_in_use_or_reserved_is_skipped():
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for busy in range(24_000, 25_000):  # a listener on a port of the range
            try:
                held.bind(("127.0.0.1", busy))
                break
            except OSError:
                continue
        held.listen()
        # a two-port range: the busy one is skipped, the other is handed out once
        first = reserve_free_port(low=busy, high=busy + 2, attempts=50)
        second = reserve_free_port(low=busy, high=busy + 2, attempts=50)
    assert first == busy + 1
    assert second not in (busy, busy + 1)  # none left: the kernel's choice
