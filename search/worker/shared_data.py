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

Splits = tuple[ImageData, ImageData, ImageData | None]  # train, val (a final's: test), holdout
_cache: dict[tuple[str, ...], Splits] = {}


@dataclass(frozen=True)
class SharedData:
    """Object refs of the (train, validation) splits, and of a final's held-out validation split
    when it has one; pickling it copies only the refs."""

    train: Any  # ray.ObjectRef
    val: Any
    holdout: Any = None

    @classmethod
    def put(cls, train: ImageData, val: ImageData, holdout: ImageData | None = None) -> SharedData:
        """Store the splits in the object store of the running Ray session."""
        import ray

        return cls(ray.put(train), ray.put(val), ray.put(holdout) if holdout is not None else None)

    def fetch(self) -> tuple[ImageData, ImageData, ImageData | None, bool]:
        """(train, val, holdout, cached): from this process's cache, else from the object store
        once."""
        refs = [self.train, self.val, *([self.holdout] if self.holdout is not None else [])]
        key = tuple(ref.hex() for ref in refs)
        hit = _cache.get(key)
        if hit is not None:
            return (*hit, True)
        import ray

        fetched = ray.get(refs)
        splits: Splits = (fetched[0], fetched[1], fetched[2] if len(fetched) > 2 else None)
        _cache.clear()
        _cache[key] = splits
        return (*splits, False)


@dataclass(frozen=True)
class LocalData:
    """The splits held in this process; :meth:`fetch` as for SharedData."""

    train: ImageData
    val: ImageData
    holdout: ImageData | None = None

    def fetch(self) -> tuple[ImageData, ImageData, ImageData | None, bool]:
        """(train, val, holdout, True): the splits are in this process already."""
        return self.train, self.val, self.holdout, True
