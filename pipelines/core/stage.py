"""Stage and pipeline types, and the context a stage body receives."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal

from pydantic import BaseModel

from components.errors import ConfigError
from pipelines.core.artifacts import Artifact, ArtifactWriter

log = logging.getLogger("recgen")


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline: ``run(ctx)`` reads ``ctx.input(...)`` and writes ``ctx.out``.

    kind="task" runs the body in a Ray task with ``cfg.resources[name]``; kind="driver"
    runs it in the driver (for stages that launch Ray Train / Ray Tune themselves). ``kind``
    may also be a function of the config returning one of the two (:meth:`kind_for`): a
    training stage whose loop runs in-process (``trainer.num_workers: 0``) can then be a task
    and run beside other stages, which a driver stage (run in the scheduler's thread) cannot.
    ``config_keys`` are the top-level config sections that change what the stage computes.
    ``external_inputs(cfg)`` may return local file paths whose content is part of the
    fingerprint (raw data files of ingest stages), as a list or as a mapping path -> the
    config key naming it (used in errors). Every path returned must exist: a missing one is
    an error, checked before Ray starts (:func:`pipelines.core.runner.preflight`); the
    function may raise InputError itself for inputs it cannot use (e.g. an unknown format).
    """

    name: str
    run: Callable[["StageContext"], None]
    inputs: tuple[str, ...] = ()
    config_keys: tuple[str, ...] = ()
    kind: Literal["task", "driver"] | Callable[[Any], str] = "task"
    version: int = 1
    external_inputs: Callable[[Any], list[str] | dict[str, str]] | None = None
    description: str = ""

    def kind_for(self, cfg: Any) -> str:
        """``"task"`` or ``"driver"`` for this config."""
        k = self.kind(cfg) if callable(self.kind) else self.kind
        if k not in ("task", "driver"):
            raise ValueError(f"stage {self.name}: kind must be 'task' or 'driver', got {k!r}")
        return k


@dataclass(frozen=True)
class Pipeline:
    name: str
    config_cls: type[BaseModel]
    stages: list[Stage]
    description: str = ""

    def __post_init__(self):
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline {self.name}: duplicate stage names {names}")
        seen: set[str] = set()
        for s in self.stages:
            for i in s.inputs:
                if i not in seen:
                    raise ValueError(f"pipeline {self.name}: stage {s.name} needs {i}, "
                                     "which must come earlier in the list")
            seen.add(s.name)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise ConfigError(f"pipeline '{self.name}' has no stage '{name}' "
                          f"(stages: {', '.join(s.name for s in self.stages)})")

    def upstream(self, name: str) -> list[str]:
        """``name`` and every stage it depends on, in pipeline order."""
        need = {name}
        for s in reversed(self.stages):
            if s.name in need:
                need.update(s.inputs)
        return [s.name for s in self.stages if s.name in need]

    def downstream(self, name: str) -> list[str]:
        """``name`` and every stage that depends on it, in pipeline order."""
        hit = {name}
        for s in self.stages:
            if hit.intersection(s.inputs):
                hit.add(s.name)
        return [s.name for s in self.stages if s.name in hit]


@dataclass
class StageContext:
    """What a stage body sees. See docs/architecture.md."""

    pipeline: str
    stage: str
    cfg: Any
    inputs: dict[str, Artifact]
    out: ArtifactWriter
    scratch_dir: str
    fingerprint: str
    extra: dict = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return int(getattr(self.cfg, "seed", 0))

    def input(self, name: str) -> Artifact:
        if name not in self.inputs:
            raise KeyError(f"stage '{self.stage}' did not declare input '{name}' "
                           f"(declared: {', '.join(self.inputs) or 'none'})")
        return self.inputs[name]

    def log(self, fmt: str, *args: Any) -> None:
        """A line for the person running the pipeline (the console, before this stage's "done")."""
        from pipelines.core.console import emit

        msg = fmt % args if args else fmt
        log.info("[%s/%s] %s", self.pipeline, self.stage, msg)
        emit(f"[{self.pipeline}/{self.stage}] {msg}")

    def progress(self, iterable: Iterable | None = None, desc: str | None = None, **kw):
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=f"{self.stage}: {desc}" if desc else self.stage,
                    mininterval=2.0, **kw)
