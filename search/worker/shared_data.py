"""The search's data split in Ray's object store, deserialised once per worker process.

``tune.with_parameters`` already puts its arguments in the object store, but it ``ray.get``s
every argument again at the start of every trial, so a reused actor would unpickle the whole data
set (47 MB for Fashion-MNIST) once per trial. Here the driver puts the two splits once
(:meth:`SharedData.put`) and only the small handle travels with each trial; a worker fetches the
splits on its first trial and keeps them in a per-process cache keyed by the object refs, so the
next trials in the same actor (``reuse_actors=True``) start from memory. A new search (new refs)
replaces the cached entry, so a process never holds two data sets.

:class:`LocalData` is the same handle for trials that run in the driver's own process (the
inline executor, ``search.driver.inline``): the split is already there, nothing is fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainers.data import ImageData

_cache: dict[tuple[str, str], tuple[ImageData, ImageData]] = {}


@dataclass(frozen=True)
class SharedData:
    """Object refs of the (train, validation) splits; pickling it copies only the refs."""

    train: Any  # ray.ObjectRef
    val: Any

    @classmethod
    def put(cls, train: ImageData, val: ImageData) -> SharedData:
        """Store both splits in the object store of the running Ray session."""
        import ray

        return cls(ray.put(train), ray.put(val))

    def fetch(self) -> tuple[ImageData, ImageData, bool]:
        """(train, val, cached): from this process's cache, else from the object store once."""
        key = (self.train.hex(), self.val.hex())
        hit = _cache.get(key)
        if hit is not None:
            return hit[0], hit[1], True
        import ray

        train, val = ray.get([self.train, self.val])
        _cache.clear()
        _cache[key] = (train, val)
        return train, val, False


@dataclass(frozen=True)
class LocalData:
    """The (train, validation) splits held in this process; :meth:`fetch` as for SharedData."""

    train: ImageData
    val: ImageData

    def fetch(self) -> tuple[ImageData, ImageData, bool]:
        """(train, val, True): the split is in this process already."""
        return self.train, self.val, True
