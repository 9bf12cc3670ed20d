"""bench.streams' alternating windows: which turns count, in which order, and how streams are closed."""
from __future__ import annotations

import os
import socket
import struct

import pytest

from bench.streams import Streams, dropped_but_held, inside, window_order


def test_a_turn_counts_for_a_window_only_when_it_starts_and_ends_inside_it():
    windows = [(10.0, 20.0), (30.0, 40.0)]
    assert inside(windows, 10.0, 10.0) is True
    assert inside(windows, 35.0, 1.0) is True
    assert inside(windows, 9.5, 1.0) is False  # started during the switch before
    assert inside(windows, 19.5, 1.0) is False  # ended during the switch after
    assert inside(windows, 25.0, 1.0) is False
    assert inside([], 15.0, 1.0) is False


def test_windows_come_in_mirrored_pairs_so_a_steady_drift_meets_both_alike():
    assert window_order(1) == ["closed", "open"]
    assert window_order(4) == ["closed", "open", "open", "closed", "closed", "open", "open", "closed"]
    assert window_order(0) == []


def test_closed_streams_reset_the_connection_so_the_server_hears_of_it_at_once():
    class Waiter:
        class http:
            cookies = []

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with Streams(f"http://127.0.0.1:{port}") as streams:
            streams.open(Waiter())
            server_side, _ = listener.accept()
            with server_side:
                server_side.settimeout(10)
                assert server_side.recv(4096).startswith(b"GET /api/events HTTP/1.1")
                streams.close_all()
                assert streams.open_now() == 0
                # A plain close would read as an orderly end (b""); a reset fails the next read or write.
                with pytest.raises(ConnectionResetError):
                    server_side.recv(1)


def test_a_reset_stream_counts_as_held_until_its_server_closes_it():
    me = [os.getpid()]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()
        # Other tests in this process may have left sockets of their own behind: count from here.
        before = dropped_but_held(me)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        server_side.settimeout(10)
        with pytest.raises(ConnectionResetError):
            server_side.recv(1)  # the reset has arrived
        assert dropped_but_held(me) == before + 1
        server_side.close()
        assert dropped_but_held(me) == before
