"""Ctrl-C and SIGTERM: one story for every command that runs a pipeline or a search.

The command's body runs in a worker thread; the main thread only waits for it and owns the
signal handlers. (That also keeps Ray Train's ``TorchTrainer.fit`` and Ray Tune from
installing their own SIGINT handlers: both do that only on the main thread.)

On the first SIGINT or SIGTERM the main thread

1. runs the hooks the body registered with :func:`on_interrupt` (the runner records the run
   as ``interrupted``; ``recgen tune`` names the ``--resume`` command),
2. prints ``interrupted; rerun the same command to resume`` (or the hooks' own line),
3. exits with 128 + the signal number: 130 for SIGINT, 143 for SIGTERM. Exiting ends the
   driver's Ray job (its tasks, actors, placement groups) and an embedded Ray with it. The body thread is abandoned; nothing it would write afterwards (a
   ``succeeded`` run record, a search's results) is written, see :func:`requested`.

A second signal while this happens exits at once with the same code.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, Callable

MESSAGE = "interrupted; rerun the same command to resume"
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_lock = threading.RLock()
_hooks: list[Callable[[int], str | None]] = []
_signum: int | None = None


def exit_code(signum: int) -> int:
    return 128 + int(signum)


def requested() -> int | None:
    """The signal that interrupted this command, or None (bodies check before writing results)."""
    return _signum


class Interrupted(BaseException):
    """Raised in the main thread when a signal arrives before (or without) a body thread."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def on_interrupt(hook: Callable[[int], str | None]) -> Callable[[], None]:
    """Register ``hook(signum)`` to run on the first signal; it may return a line to print
    instead of the default message. Returns a function that unregisters it."""
    with _lock:
        _hooks.append(hook)

    def remove() -> None:
        with _lock:
            if hook in _hooks:
                _hooks.remove(hook)
    return remove


def _stop(signum: int) -> None:
    """First signal with a running body: hooks, message, Ray down, exit."""
    lines = []
    with _lock:
        hooks = list(reversed(_hooks))
    for hook in hooks:
        try:
            line = hook(signum)
        except Exception as e:  # noqa: BLE001 - a failing hook must not block the exit
            line = None
            print(f"warning: while stopping: {e}", file=sys.stderr, flush=True)
        if line:
            lines.append(line)
    print("\n".join(lines) if lines else MESSAGE, file=sys.stderr, flush=True)
    # No ray.shutdown() here: the abandoned body thread would start a new Ray on its next call.
    # Exiting ends this driver's job (Ray kills its tasks, actors and placement groups) and the
    # embedded Ray started by this process goes with it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code(signum))


def call(body: Callable[[], Any]) -> Any:
    """Run ``body()`` in a worker thread with the interrupt story above; return its value or
    raise its exception here. Must be called from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return body()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = body()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            box["error"] = e

    worker = threading.Thread(target=target, name="recgen-command", daemon=True)

    def handler(signum, frame):
        global _signum
        if _signum is not None:       # second signal: leave now
            os._exit(exit_code(_signum))
        _signum = signum
        if worker.is_alive():
            _stop(signum)
        raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def guard() -> Callable[[], None]:
    """Handlers for the part of a command before :func:`call` (config, preflight, Ray start):
    a signal there raises :class:`Interrupted` in the main thread. Returns a restore function."""
    def handler(signum, frame):
        global _signum
        _signum = signum
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, handler)

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)
    return restore


def reset() -> None:
    """Forget a recorded signal (tests calling several commands in one process)."""
    global _signum
    _signum = None
