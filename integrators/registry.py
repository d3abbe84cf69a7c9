"""Integrators by name, for experiment scripts and command lines."""

from __future__ import annotations

from ..landscape.validate import check_choice
from . import adaptive, overdamped, splitting, underdamped
from ._base import Integrator


def _factories() -> dict:
    return {
        "sgd": overdamped.sgd,
        "gd": overdamped.sgd,
        "langevin": overdamped.langevin,
        "momentum": underdamped.momentum,
        "heavy_ball": underdamped.momentum,
        "nesterov": underdamped.nesterov,
        "underdamped_langevin": underdamped.underdamped_langevin,
        "baoab": splitting.baoab,
        "adam": adaptive.adam,
        "adamw": adaptive.adamw,
        "rmsprop": adaptive.rmsprop,
        "adagrad": adaptive.adagrad,
    }


def names() -> list[str]:
    """The names `get` accepts."""
    return sorted(_factories())


def get(name: str, **hyperparams) -> Integrator:
    """Build an integrator by name, e.g. `get("adam", lr=1e-3)`; a misspelt name gets a hint."""
    factories = _factories()
    check_choice("optimizer", name, factories)
    return factories[name](**hyperparams)
