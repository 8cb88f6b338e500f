"""Image sources, one file each: ``data.source: NAME`` is ``data/sources/NAME.py``.

A source module defines ``SIDE`` (its images' side in pixels; ``None`` where the user's files
decide, as for ``imagefolder``) and ``load(data, seed)``, returning
:class:`~ecogen.data.pools.SourceImages`: uint8 (N, C, H, W) images, int64 labels and class names,
split into a train pool and a test pool.  Adding a source is adding its file (and its test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecogen.plugins import SOURCES, plugin, plugin_names

if TYPE_CHECKING:
    from ecogen.config.params import DataParams
    from ecogen.data.pools import SourceImages


def source_names() -> list[str]:
    """Every image source this installation knows (imports none of them)."""
    return plugin_names(SOURCES)


def load_source(data: DataParams, seed: int) -> SourceImages:
    """Base images of ``data.source``; ``seed`` drives the train/test split where one is made."""
    return plugin(SOURCES, data.source).load(data, seed)  # type: ignore[no-any-return]
