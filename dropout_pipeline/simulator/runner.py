"""Start the simulator: in a background thread (tests) or a child process (demo, benchmarks)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from dropout_pipeline.simulator.server import SimulatorState, build_app, urls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(state: SimulatorState, host: str, port: int) -> None:
    """Serve until interrupted (the `dropout-pipeline simulate` command)."""
    uvicorn.run(build_app(state), host=host, port=port, log_level="warning", access_log=False)


@dataclass
class RunningSimulator:
    host: str
    port: int
    state: SimulatorState | None = None

    @property
    def mooc_url(self) -> str:
        return urls(self.host, self.port)[0]

    @property
    def h5p_url(self) -> str:
        return urls(self.host, self.port)[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def control(self, path: str, body: dict | None = None) -> dict:
        """POST to the simulator's own control surface (/_sim/...)."""
        return httpx.post(f"{self.base_url}/_sim/{path}", json=body or {}, timeout=10).json()


def wait_until_healthy(base_url: str, timeout_seconds: float = 30) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/_sim/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"simulator at {base_url} did not answer within {timeout_seconds:g}s")


@contextmanager
def simulator_thread(state: SimulatorState, host: str = "127.0.0.1") -> Iterator[RunningSimulator]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(state), host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    running = RunningSimulator(host, port, state)
    wait_until_healthy(running.base_url)
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def simulator_process(args: list[str], host: str = "127.0.0.1") -> Iterator[RunningSimulator]:
    """The simulator as a child process, so it has a core of its own."""
    port = free_port()
    command = [sys.executable, "-m", "dropout_pipeline.cli", "simulate", "--host", host, "--port", str(port), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    running = RunningSimulator(host, port)
    try:
        try:
            wait_until_healthy(running.base_url, timeout_seconds=60)
        except TimeoutError:
            process.kill()
            raise RuntimeError(f"simulator failed to start: {process.stderr.read().decode()[-2000:]}") from None
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
