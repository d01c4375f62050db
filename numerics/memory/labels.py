"""Sample-class labels shared by every memorization criterion.

docs/memorization.md, "Three criteria".

A generated sample is *memorized* (a copy of a training point), *spurious* (a recurring
attractor that is not a training point) or *generalized* (neither). Every classifier in
:mod:`gtv.numerics.memory` returns these integer codes.
"""

from __future__ import annotations

__all__ = ["GENERALIZED", "LABEL_NAMES", "MEMORIZED", "SPURIOUS"]

#: A sample that copies a training point.
MEMORIZED = 0
#: A sample on a recurring non-training attractor with its own basin.
SPURIOUS = 1
#: A sample that is neither a training copy nor a recurring attractor.
GENERALIZED = 2
#: ``LABEL_NAMES[label]`` is the name of a label code.
LABEL_NAMES = ("memorized", "spurious", "generalized")
