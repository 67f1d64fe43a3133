"""A real two-node Ray cluster on 127.0.0.1: a `ray start --head` plus a joined worker node.

Each node is a `ray start ... --block` process in its own session; :meth:`stop` ends exactly
those processes (SIGTERM, which makes `ray start --block` shut its node down, then SIGKILL
to the process group of whatever is left). ``ray stop`` is not used: it kills every Ray
process on the machine, including other people's.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def cluster_env() -> dict:
    """Environment for the nodes and for every CLI call talking to them."""
    from pipelines.core.ray_env import ray_process_env

    env = ray_process_env()  # usage stats off, Ray's private HOME (no metadata probe), token in env
    env.pop("RAY_ADDRESS", None)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # `python` / `recgen` of this venv for jobs
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # 127.0.0.1 stays 127.0.0.1 (see ray_node.py)
        RAY_AUTH_MODE="token",
        RAY_ENABLE_UV_RUN_RUNTIME_ENV="0",
        RAY_USAGE_STATS_ENABLED="0",
        DGLBACKEND="pytorch",
        TQDM_DISABLE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


class LoopbackCluster:
    """``head_cpus`` on the head; a worker node with ``worker_cpus`` (none when 0)."""

    def __init__(self, head_cpus: int = 2, worker_cpus: int = 1):
        self.head_cpus, self.worker_cpus = head_cpus, worker_cpus
        self.gcs_port, self.dash_port = free_port(), free_port()
        self.temp_dir = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: unix socket paths
        # Each node its own temp dir: nodes sharing one would share (and delete each other's)
        # runtime-env folders, e.g. the job's working_dir while its driver runs in it.
        self.worker_temp_dir = tempfile.mkdtemp(prefix="rw", dir="/tmp")
        self.env = cluster_env()
        self.env["RAY_AUTH_TOKEN"] = uuid.uuid4().hex + uuid.uuid4().hex
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    @property
    def gcs_address(self) -> str:
        return f"{LOOPBACK}:{self.gcs_port}"

    @property
    def dashboard(self) -> str:
        return f"http://{LOOPBACK}:{self.dash_port}"

    def _spawn(self, argv: list[str], name: str) -> None:
        log = Path(self.temp_dir) / f"{name}.log"
        self.logs.append(log)
        f = open(log, "w")
        self.procs.append(subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=f, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def start(self, timeout: float = 90, tries: int = 2) -> "LoopbackCluster":
        """Start the head (and the worker). Ray gives a node 30 s to register; on a loaded
        machine a node can miss that and exit: it is started once more (``tries``)."""
        for attempt in range(tries):
            try:
                return self._start(timeout)
            except RuntimeError:
                self.stop()
                if attempt == tries - 1:
                    raise
                self.procs, self.logs = [], []
                self.gcs_port, self.dash_port = free_port(), free_port()
                self.temp_dir = tempfile.mkdtemp(prefix="rc", dir="/tmp")
                self.worker_temp_dir = tempfile.mkdtemp(prefix="rw", dir="/tmp")
        return self

    def _start(self, timeout: float) -> "LoopbackCluster":
        ray = str(BIN / "ray")
        self._spawn([ray, "start", "--head", "--block", "--node-ip-address", LOOPBACK,
                     "--port", str(self.gcs_port), "--num-cpus", str(self.head_cpus),
                     "--dashboard-host", LOOPBACK, "--dashboard-port", str(self.dash_port),
                     "--ray-client-server-port", str(free_port()),
                     "--dashboard-agent-listen-port", str(free_port()),
                     "--temp-dir", self.temp_dir, "--disable-usage-stats"], "head")
        self.wait_nodes(1, timeout)
        if not self.worker_cpus:   # a one-node cluster (benchmarks/bench_scale.py compares 1 and 2 nodes)
            return self
        self._spawn([sys.executable, str(Path(__file__).with_name("ray_node.py")), "start", "--block",
                     "--address", self.gcs_address, "--node-ip-address", LOOPBACK,
                     "--num-cpus", str(self.worker_cpus),
                     "--dashboard-agent-listen-port", str(free_port()),
                     "--temp-dir", self.worker_temp_dir, "--disable-usage-stats"], "worker")
        self.wait_nodes(2, timeout)
        return self

    def ray(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "ray"), *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def alive_nodes(self) -> int:
        try:
            r = self.ray("status", "--address", self.gcs_address, timeout=60)
        except subprocess.TimeoutExpired:   # a loaded machine: ask again (wait_nodes has the deadline)
            return 0
        if r.returncode != 0:
            return 0
        active = r.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return sum(1 for ln in active.splitlines() if ln.strip().startswith("1 node_"))

    def wait_nodes(self, n: int, timeout: float) -> None:
        t0 = time.time()
        while time.time() - t0 < timeout:
            for p, log in zip(self.procs, self.logs):
                if p.poll() is not None:
                    raise RuntimeError(f"ray node exited early ({p.returncode}):\n{log.read_text()[-3000:]}")
            if self.alive_nodes() >= n:
                return
            time.sleep(1)
        raise RuntimeError(f"cluster did not reach {n} nodes in {timeout}s:\n"
                           + "\n".join(log.read_text()[-2000:] for log in self.logs))

    def stop(self) -> None:
        for p in reversed(self.procs):  # worker first, then head
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 20
        for p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs:  # whatever survived, in the node's own process group
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
