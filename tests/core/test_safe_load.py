"""Checkpoints and model artifacts load with weights_only=True: a planted pickle is refused."""
from __future__ import annotations

import pickle

import pytest
import torch

from pipelines.core.train import load_state

_MARK = []


def _payload(tag: str) -> None:
    _MARK.append(tag)


class Planted:
    """Would run code when unpickled (here: append to a list; in an attack: anything)."""

    def __reduce__(self):
        return (_payload, ("ran",))


def test_plain_state_round_trips(tmp_path):
    state = {"model": {"w": torch.ones(2)}, "epoch": 3, "history": [{"loss": 0.5}], "spec": (1, "x"),
             "rng": {"state": 2 ** 127 + 1}}
    torch.save(state, tmp_path / "state.pt")
    back = load_state(str(tmp_path / "state.pt"))
    assert back["epoch"] == 3 and torch.equal(back["model"]["w"], torch.ones(2))
    assert back["rng"]["state"] == 2 ** 127 + 1


def test_planted_object_is_refused_and_never_runs(tmp_path):
    torch.save({"model": {"w": torch.ones(2)}, "evil": Planted()}, tmp_path / "state.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_state(str(tmp_path / "state.pt"))
    assert _MARK == []
    # the same file loads (and runs the payload) with plain pickle semantics: the test is not vacuous
    torch.load(tmp_path / "state.pt", weights_only=False)
    assert _MARK == ["ran"]


def test_no_stage_loads_with_pickle_semantics():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [f"{p}:{i}" for p in (root / "pipelines").rglob("*.py") for i, line in
                 enumerate(p.read_text().splitlines(), 1) if "weights_only=False" in line]
    offenders += [f"{p}:{i}" for p in (root / "components").rglob("*.py") for i, line in
                  enumerate(p.read_text().splitlines(), 1)
                  if "torch.load(" in line and "weights_only=True" not in line]
    assert not offenders, offenders
