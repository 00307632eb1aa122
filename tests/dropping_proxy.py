"""A real TCP proxy that drops connections: each of the first ``drop`` connections it accepts
is closed with a reset once the client has sent its request (as a flaky network or an
overloaded endpoint does); every later one is forwarded both ways, byte for byte."""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress


class DroppingProxy:
    """Listens on 127.0.0.1 and forwards to ``127.0.0.1:port`` (see the module)."""

    def __init__(self, port: int, drop: int) -> None:
        self._target = ("127.0.0.1", port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.to_drop = drop
        self.dropped = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                drop = self.dropped < self.to_drop
                self.dropped += drop
            target = self._drop if drop else self._forward
            threading.Thread(target=target, args=(client,), daemon=True).start()

    @staticmethod
    def _drop(client: socket.socket) -> None:
        with suppress(OSError):
            client.recv(65536)  # the request arrives ...
            # ... and the connection is reset without an answer
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._target)
        except OSError:
            client.close()
            return

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            with suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            with suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self._listener.close()
