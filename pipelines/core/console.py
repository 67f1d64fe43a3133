"""The console a person reads: stage lines, per-epoch progress and results.

Ray's own output (worker and controller logs, Ray Train's checkpoint and report chatter) does
not reach the console: the embedded Ray starts with ``log_to_driver=False`` (``--verbose``
turns it back on) and :func:`collect_framework_logs` copies this job's worker logs into the
run's record directory at the end of the run.

Stage bodies and training workers run in other processes. Their lines reach the driver through
a Ray queue (``ray.util.queue.Queue``): :func:`emit` puts a line, a thread in the driver prints
it. ``put`` returns once the line is in the queue, so every line a stage emitted is there when
its task returns, and the driver drains the queue before it prints the stage's "done".
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

_QUEUE: Any = None                          # this process's channel to the driver's console
_SINK: Callable[[str], None] | None = None  # set in the driver while a Console is open


def attach(queue: Any) -> None:
    """Send this process's :func:`emit` lines to ``queue`` (a worker or task process)."""
    global _QUEUE
    _QUEUE = queue


def current_queue() -> Any:
    """The queue lines of this run go to (for processes this one starts), or None."""
    return _ACTIVE.queue if _ACTIVE is not None else _QUEUE


def emit(line: str) -> None:
    """Show ``line`` on the console of the run this process works for."""
    if _SINK is not None:
        _SINK(line)
        return
    if _QUEUE is not None:
        try:
            _QUEUE.put_nowait(line)
            return
        except Exception:  # noqa: BLE001 - the driver went away: fall back to this process's stdout
            pass
    print(line, flush=True)


_ACTIVE: "Console | None" = None


class Console:
    """Driver side: prints its own lines and those other processes :func:`emit`; keeps them all."""

    def __init__(self, echo: bool = True, poll_s: float = 0.3):
        from ray.util.queue import Queue

        self.echo, self.poll_s, self.lines = echo, poll_s, []
        self.queue = Queue(actor_options={"num_cpus": 0})
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="recgen-console", daemon=True)

    def __enter__(self) -> "Console":
        global _SINK, _ACTIVE
        _SINK, _ACTIVE = self.say, self
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def say(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            if self.echo:
                print(line, flush=True)

    def drain(self) -> None:
        """Print every line queued so far (call before announcing that a stage is done)."""
        with self._lock:
            try:
                n = self.queue.qsize()
                items = self.queue.get_nowait_batch(n) if n else []
            except Exception:  # noqa: BLE001 - queue actor gone (Ray shutting down)
                return
            for line in items:
                self.say(line)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.drain()
            time.sleep(self.poll_s)

    def close(self) -> None:
        global _SINK, _ACTIVE
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.drain()
        _SINK, _ACTIVE = None, None
        try:
            self.queue.shutdown()
        except Exception:  # noqa: BLE001
            pass


def progress_line(prefix: str, metrics: dict, keys: tuple[str, ...] = ()) -> str:
    """``[prefix] epoch 3: loss 0.412, val_top1 0.750`` from a metrics row."""
    shown = keys or tuple(k for k in metrics if k == "loss" or k.startswith(("val", "test_", "nmse", "best_")))
    parts = []
    for k in shown[:5]:
        v = metrics.get(k)
        if isinstance(v, float):
            parts.append(f"{k} {v:.4g}")
        elif v is not None:
            parts.append(f"{k} {v}")
    head = f"epoch {metrics['epoch']}" if "epoch" in metrics else "step"
    return f"[{prefix}] {head}: " + ", ".join(parts)


def session_logs_dir() -> str | None:
    """The logs directory of this process's Ray session on this node, if known."""
    import os

    try:
        import ray._private.worker as w   # no public accessor in Ray 2.60

        node = getattr(w, "_global_node", None)
        if node is not None:
            return os.path.join(node.get_session_dir_path(), "logs")
    except Exception:  # noqa: BLE001
        pass
    return None


def collect_framework_logs(job_id: str | None = None, max_bytes: int = 20_000_000) -> str:
    """This job's Ray worker logs on this node (stdout/stderr of tasks, actors, Train workers).

    On a multi-node cluster the other nodes' logs stay on those nodes (``ray logs``).
    """
    import glob
    import os

    d = session_logs_dir()
    if d is None or not os.path.isdir(d):
        return "(Ray's session log directory is not on this machine; see `ray logs`)\n"
    out, size = [f"(from {d})\n"], 0
    for path in sorted(glob.glob(os.path.join(d, "worker-*"))):
        name = os.path.basename(path)
        if job_id and f"-{job_id}-" not in name:
            continue
        try:
            with open(path, errors="replace") as f:
                text = f.read(max_bytes)
        except OSError:
            continue
        if not text.strip():
            continue
        out.append(f"===== {name}\n{text}")
        size += len(text)
        if size > max_bytes:
            out.append("===== (truncated)\n")
            break
    return "".join(out)
