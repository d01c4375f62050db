"""Resuming ``gtv validate linear``: a list of configurations, one result file each.

``gtv validate linear`` runs one comparison per configuration (eps x P) and saves each to its own
result file (:meth:`gtv.validation.linear.compare.LinearComparison.save`,
:meth:`gtv.validation.linear.target_noise.TargetNoiseComparison.save`).
:class:`ResumableConfigurations` makes that loop resumable (docs/reliability.md, "Resuming
interrupted runs"): a :class:`gtv.validation.checkpoint.TaskCheckpoint` records, after each
configuration's result file is written, that the configuration is done. A run started again with
the same configurations reloads the finished results from their files (verified: checksummed, of
the right kind and of the same configuration; a file that fails is reported in one
:class:`~gtv.numerics.io.CacheEntryWarning` line and recomputed) and computes only the others.
Every configuration draws from its own named streams (``stream(config.seed, ...)``), so the
resumed run's numbers are those of an uninterrupted run. A configuration is one task: its stages
share the trained ensemble, which is not saved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gtv.numerics.io import load_cache_entry
from gtv.validation.checkpoint import TaskCheckpoint, checkpoint_path, json_normalized

__all__ = ["KIND", "ResumableConfigurations"]

#: Kind of the resume files of ``gtv validate linear`` (``DIR/linear.partial.npz``, ...).
KIND = "linear-validation-partial"


class ResumableConfigurations:
    """The results of a list of configurations, each saved to its own file, resumable.

    Parameters
    ----------
    checkpoint : path or None
        Resume file (``.npz`` added if missing); ``None``: no resume file.
    configs : sequence of JsonConfig
        The configurations (anything with ``to_dict()``), in the order they run.
    stems : sequence of path
        Result file of each configuration, as passed to the result's ``save``.
    load : callable
        ``load(path)`` reads a saved result (``path`` = the stem's ``.npz`` file) and returns an
        object with the attribute ``config``; it raises ``ValueError`` (or ``OSError``) for an
        unusable file.
    kind : str, default :data:`KIND`
        Kind recorded in the resume file.

    Raises
    ------
    ValueError
        If ``configs`` and ``stems`` differ in length, or the resume file was written for other
        configurations (naming the file).
    """

    def __init__(
        self,
        checkpoint: str | Path | None,
        configs: Sequence[Any],
        stems: Sequence[str | Path],
        load: Callable[[Path], Any],
        kind: str = KIND,
    ) -> None:
        if len(configs) != len(stems):
            raise ValueError(
                f"stems: need one per configuration ({len(configs)}), got {len(stems)}"
            )
        self.configs = list(configs)
        self.stems = [Path(s) for s in stems]
        self._load = load
        record = {
            "configs": [json_normalized(c.to_dict()) for c in self.configs],
            "files": [s.name for s in self.stems],
        }
        self._ckpt = TaskCheckpoint(checkpoint, kind, record, {}, len(self.configs))

    @property
    def resumed(self) -> int:
        """Number of configurations found finished in the resume file."""
        return self._ckpt.resumed

    def _load_same(self, path: Path, k: int) -> Any:
        result = self._load(path)
        if json_normalized(result.config.to_dict()) != json_normalized(self.configs[k].to_dict()):
            raise ValueError(f"path {str(path)!r}: holds the result of another configuration")
        return result

    def result(self, k: int, compute: Callable[[Any], Any]) -> tuple[Any, list[Path]]:
        """Configuration ``k``'s result and the files it is saved in.

        A finished configuration is reloaded from its result file; otherwise (or if that file
        fails verification: one warning line) ``compute(config)`` runs, its result is saved with
        ``result.save(stem)`` and the configuration is marked done in the resume file.
        """
        stem = self.stems[k]
        result = None
        if self._ckpt.done[k]:
            result = load_cache_entry(checkpoint_path(stem), lambda p: self._load_same(p, k))
        if result is None:
            result = compute(self.configs[k])
            paths = list(result.save(stem))
            self._ckpt.mark_done(k)
            return result, paths
        return result, list(result.save(stem))  # rewritten unchanged: every listed file exists

    def finish(self) -> None:
        """Remove the resume file (every configuration is done)."""
        self._ckpt.finish()
