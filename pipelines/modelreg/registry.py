"""A model registry stored as JSON files under the artifact root.

Layout (``<root>/registry/<model>/``)::

    versions/000001.json   one file per version: lineage, metrics, config, data, decision
    state.json             the champion and the history of promote / reject / rollback events

Every file is written atomically (temp file + rename, via the artifact store), and on a
local or NFS root every change holds ``<root>/registry/<model>/.lock`` so two writers never
pick the same version number. A version's *lineage* maps each pipeline stage to the
fingerprint of the artifact it was built from, so ``recgen artifacts`` finds its inputs.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from components.errors import ConfigError
from pipelines.core.artifacts import Store

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class ModelVersion:
    """One registered model version (the content of ``versions/NNNNNN.json``)."""

    model: str
    version: int
    created_at: str
    lineage: dict[str, str]
    metrics: dict[str, float]
    config: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    parent: int | None = None
    decision: dict[str, Any] | None = None
    model_ref: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ModelVersion":
        return cls(**d)


class ModelRegistry:
    """Versions, champion and history of one model under an artifact root."""

    def __init__(self, root: str, model: str):
        if not _NAME.match(model or ""):
            raise ConfigError(f"model name {model!r} may only use letters, digits, '_', '.', '-'")
        self.store = Store(root)
        self.model = model
        self.dir = self.store.join("registry", model)

    # -- files ---------------------------------------------------------------------
    def _vpath(self, version: int) -> str:
        return f"{self.dir}/versions/{version:06d}.json"

    def _state_path(self) -> str:
        return f"{self.dir}/state.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if not self.store.local:
            yield
            return
        from filelock import FileLock

        os.makedirs(self.dir, exist_ok=True)
        with FileLock(os.path.join(self.dir, ".lock"), timeout=60):
            yield

    def state(self) -> dict:
        p = self._state_path()
        if not self.store.exists(p):
            return {"model": self.model, "champion": None, "history": []}
        return self.store.read_json(p)

    def _write_state(self, state: dict) -> None:
        self.store.write_json_atomic(self._state_path(), state)

    def _write_version(self, v: ModelVersion) -> None:
        self.store.write_json_atomic(self._vpath(v.version), v.to_json())

    # -- reading -------------------------------------------------------------------
    def versions(self) -> list[ModelVersion]:
        import pyarrow.fs as pafs

        d = f"{self.dir}/versions"
        if not self.store.exists(d):
            return []
        infos = self.store.fs.get_file_info(pafs.FileSelector(d))
        files = sorted(i.path for i in infos if re.fullmatch(r"\d{6}\.json", i.base_name))
        return [ModelVersion.from_json(self.store.read_json(f)) for f in files]

    def get(self, version: int) -> ModelVersion:
        p = self._vpath(int(version))
        if not self.store.exists(p):
            known = ", ".join(str(v.version) for v in self.versions()) or "none"
            raise ConfigError(f"model '{self.model}' has no version {version} under {self.dir} "
                              f"(versions: {known}) — see `recgen registry ls`")
        return ModelVersion.from_json(self.store.read_json(p))

    def champion(self) -> ModelVersion | None:
        c = self.state().get("champion")
        return None if c is None else self.get(c)

    def find(self, **data: Any) -> ModelVersion | None:
        """The newest version whose ``data`` contains all the given key/values."""
        for v in reversed(self.versions()):
            if all(v.data.get(k) == val for k, val in data.items()):
                return v
        return None

    # -- writing -------------------------------------------------------------------
    def register(self, *, lineage: dict[str, str], metrics: dict[str, float],
                 config: dict[str, Any], data: dict[str, Any] | None = None,
                 run_id: str | None = None, parent: int | None = None,
                 model_ref: dict[str, Any] | None = None) -> ModelVersion:
        """Add a new version (not yet champion) and return it."""
        with self._locked():
            existing = self.versions()
            nxt = (existing[-1].version + 1) if existing else 1
            v = ModelVersion(model=self.model, version=nxt, created_at=_now(), lineage=dict(lineage),
                             metrics={k: float(x) for k, x in metrics.items()}, config=config,
                             data=dict(data or {}), run_id=run_id, parent=parent,
                             model_ref=dict(model_ref or {}))
            self._write_version(v)
            return v

    def _event(self, state: dict, action: str, version: int, previous: int | None, reason: str) -> None:
        state.setdefault("history", []).append(
            {"at": _now(), "action": action, "version": version, "previous": previous, "reason": reason})

    def record_decision(self, version: int, promote: bool, reason: str) -> ModelVersion:
        """Store the outcome of an automatic comparison; promote the version if it won."""
        with self._locked():
            v = self.get(version)
            state = self.state()
            prev = state.get("champion")
            v.decision = {"promoted": promote, "reason": reason, "at": _now(), "champion_before": prev}
            self._write_version(v)
            if promote:
                state["champion"] = version
            self._event(state, "promote" if promote else "reject", version, prev, reason)
            self._write_state(state)
            return v

    def promote(self, version: int, reason: str = "manual promotion") -> ModelVersion:
        """Make ``version`` the champion (a manual override of the automatic decision)."""
        with self._locked():
            v = self.get(version)
            state = self.state()
            prev = state.get("champion")
            if prev == v.version:
                raise ConfigError(f"version {version} of '{self.model}' is already the champion")
            state["champion"] = v.version
            self._event(state, "promote", v.version, prev, reason)
            self._write_state(state)
            return v

    def rollback(self, to: int | None = None, reason: str = "manual rollback") -> ModelVersion:
        """Make the previous champion (or version ``to``) the champion again."""
        with self._locked():
            state = self.state()
            cur = state.get("champion")
            if cur is None:
                raise ConfigError(f"model '{self.model}' has no champion to roll back "
                                  f"(registry {self.dir})")
            if to is None:
                promos = [e for e in state.get("history", [])
                          if e["action"] == "promote" and e["version"] == cur]
                to = promos[-1]["previous"] if promos else None
                if to is None:
                    raise ConfigError(f"version {cur} of '{self.model}' was the first champion: "
                                      "nothing to roll back to — pass --to VERSION")
            target = self.get(to)
            if target.version == cur:
                raise ConfigError(f"version {to} of '{self.model}' is already the champion")
            state["champion"] = target.version
            self._event(state, "rollback", target.version, cur, reason)
            self._write_state(state)
            return target
