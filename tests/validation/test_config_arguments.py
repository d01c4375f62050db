"""Configuration classes name the field for junk values (issue 14: errors that did not name
their argument, e.g. ``int()``'s "invalid literal" for ``n_models="a"``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gtv.numerics.checks import check_field_types
from gtv.validation.figures.figure2 import Figure2Config
from gtv.validation.figures.figure3 import Figure3Config
from gtv.validation.linear.compare import LinearCompareConfig
from gtv.validation.linear.target_noise import TargetNoiseConfig
from gtv.validation.ntk.config import NTKCompareConfig

CONFIGS = [Figure2Config, Figure3Config, LinearCompareConfig, NTKCompareConfig, TargetNoiseConfig]
JUNK = ["a", None, [1, "b"], float("nan"), -1, True]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_names_itself_for_junk(cls):
    """Before: 106 (field, value) pairs over these classes raised IndexError or an unnamed
    ValueError/TypeError (``int()``, ``float()``, ``isfinite``, unpacking)."""
    unnamed = []
    for f in dataclasses.fields(cls):
        for junk in JUNK:
            try:
                cls(**{f.name: junk})
            except (ValueError, TypeError) as exc:
                if f.name not in str(exc):
                    unnamed.append(f"{f.name}={junk!r}: {exc}")
            except Exception as exc:  # noqa: BLE001 - any other exception type is a failure
                unnamed.append(f"{f.name}={junk!r}: {type(exc).__name__}: {exc}")
    assert unnamed == []


def test_check_field_types_rules():
    @dataclasses.dataclass
    class C:
        n: int = 1
        x: float = 1.0
        xs: tuple[float, ...] = (1.0,)
        pair: tuple[float, float] = (0.0, 1.0)
        opt: int | None = None
        seed: int = 0

    check_field_types(C(n=np.int64(3), x=2, xs=np.array([1.0, 2.0]), opt=4, seed=np.uint8(1)))
    for kw, msg in [
        ({"n": 2.0}, "n must be an integer"),
        ({"n": True}, "n must be an integer"),
        ({"x": "1"}, "x must be a number"),
        ({"xs": "ab"}, "xs must be a sequence of numbers"),
        ({"xs": [1.0, None]}, "xs must be a sequence of numbers"),
        ({"pair": (1.0,)}, "pair must be a sequence of 2 numbers"),
        ({"opt": "q"}, "opt must be an integer"),
    ]:
        with pytest.raises(ValueError, match=msg):
            check_field_types(C(**kw))
    check_field_types(C(seed="left to check_seed"))  # skipped by default
