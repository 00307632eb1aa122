"""A real TCP proxy in front of the Prefect API that loses responses, as a busy machine does.

Every byte is forwarded both ways, but once per flow run the response to its COMPLETED state
transition is dropped after the server has committed it: the proxy waits for the server's
reply, throws it away and closes the connection. The Prefect client then sees "Server
disconnected without sending a response", retries the same transition, and the server
refuses the duplicate (``PreventDuplicateTransitions``) by returning the state it already
holds. That is the sequence a 503 or a read timeout on a loaded SQLite API produces, caused
here for real on 127.0.0.1 instead of waiting for a loaded machine.

WebSocket upgrades (the events client) are piped through unchanged.

The test session's Prefect API is always reached through one (``prefect_harness`` in
``tests/conftest.py``), which forwards faithfully until a test arms it with :meth:`losing`.
One address for the whole session matters: Prefect's process-wide workers (events, logs, its
global event loop thread) keep the API address they first saw, so a proxy started and
stopped around one test would leave them talking to a closed port for the rest of the session.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

_SET_STATE = re.compile(rb"^POST /api/flow_runs/([0-9a-f-]{36})/set_state ")


class LossyApi:
    """Listens on 127.0.0.1; forwards to ``upstream`` (``http://host:port/api``)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/api"
        self._dropped: list[str] | None = None  # while armed: the runs whose answer was lost
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> LossyApi:
        self._thread.start()
        return self

    @contextmanager
    def losing(self) -> Iterator[list[str]]:
        """Within: lose the first answer to each flow run's COMPLETED transition; yields the
        ids of the runs whose answer was lost, filled in as it happens."""
        dropped: list[str] = []
        with self._lock:
            self._dropped = dropped
        try:
            yield dropped
        finally:
            with self._lock:
                self._dropped = None

    def close(self) -> None:
        self._closing = True
        with suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self._upstream)
        drop_next_reply = threading.Event()
        back = threading.Thread(
            target=self._relay_replies, args=(upstream, client, drop_next_reply), daemon=True
        )
        back.start()
        buffered = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, _, rest = buffered.partition(b"\r\n\r\n")
                lowered = head.lower()
                length = re.search(rb"\r\ncontent-length:\s*(\d+)", lowered)
                if b"\r\nupgrade:" in lowered or b"\r\ntransfer-encoding:" in lowered:
                    # a WebSocket, or a body of unknown length: pipe everything from here on
                    upstream.sendall(buffered)
                    self._pipe(client, upstream)
                    return
                size = int(length.group(1)) if length else 0
                while len(rest) < size:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                body, buffered = rest[:size], rest[size:]
                if self._should_lose(head, body):
                    drop_next_reply.set()
                upstream.sendall(head + b"\r\n\r\n" + body)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            back.join(timeout=30)
            for sock in (client, upstream):
                sock.close()

    def _should_lose(self, head: bytes, body: bytes) -> bool:
        match = _SET_STATE.match(head)
        if not match:
            return False
        try:
            proposed = json.loads(body)["state"]["type"]
        except (ValueError, KeyError, TypeError):
            return False
        run_id = match.group(1).decode()
        with self._lock:
            if self._dropped is None or proposed != "COMPLETED" or run_id in self._dropped:
                return False
            self._dropped.append(run_id)
            return True

    @staticmethod
    def _relay_replies(
        upstream: socket.socket, client: socket.socket, drop_next_reply: threading.Event
    ) -> None:
        try:
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                if drop_next_reply.is_set():
                    # the server has committed the transition and answered: lose the answer
                    break
                client.sendall(chunk)
        except OSError:
            pass
        for sock in (client, upstream):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _pipe(client: socket.socket, upstream: socket.socket) -> None:
        with suppress(OSError):
            while chunk := client.recv(65536):
                upstream.sendall(chunk)
