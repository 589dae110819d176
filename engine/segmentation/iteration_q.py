"""Q after each mean-field iteration, as a result keeps it: each step made into a float16 array on first use.

Why lazy: a viewer shows the final labels first and an intermediate step only when the user slides to it, so
turning every step's compact Q (the classes present, see `crf.meanfield.CompactQ`) into C x h x w float16
planes while the CRF ran was a third of a re-run (profiled on the 451 x 300 sample: 0.68 s of 2.07 s), for
steps that are mostly never looked at. Materialised arrays are cached, so each step is made once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, overload

import numpy as np

F16_TINY = np.float32(2.0**-14)  # float16's smallest normal number


class LazyQ(Protocol):
    """One step's Q, not yet made into planes (`crf.meanfield.CompactQ`)."""

    def planes(self) -> np.ndarray: ...  # C x N float32

    def argmax(self) -> np.ndarray: ...  # (N,) class ids


def to_float16(q: np.ndarray) -> np.ndarray:
    """Q as float16 with values below float16's normal range set to 0: converting subnormals is ~15x slower,
    and probabilities under 6e-5 change neither a label nor what a viewer shows."""
    small = q < F16_TINY
    return np.where(small, np.float32(0), q).astype(np.float16)


class IterationQ(Sequence[np.ndarray]):
    """A read-only sequence of C x h x w float16 Q arrays, filled with arrays or lazy steps.

    The lazy steps stay next to the arrays made from them, so a CRF re-run with other iterations only can
    reuse them (`steps`)."""

    def __init__(self, shape: tuple[int, int, int], items: Iterable[np.ndarray | LazyQ] = ()) -> None:
        self.shape = shape
        self._items: list[np.ndarray | LazyQ] = list(items)
        self._made: dict[int, np.ndarray] = {}

    def append(self, item: np.ndarray | LazyQ) -> None:
        self._items.append(item)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> list[np.ndarray]: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self._items))[index]  # negative indices count from the end; IndexError outside
        item = self._items[index]
        if isinstance(item, np.ndarray):
            return item
        if index not in self._made:
            self._made[index] = to_float16(np.asarray(item.planes()).reshape(self.shape))
        return self._made[index]

    def labels(self, index: int) -> np.ndarray:
        """h x w class ids of step `index` (argmax of Q), from the compact step: a few ms instead of making
        the planes (what the viewer's iteration slider shows)."""
        item = self._items[index]
        if isinstance(item, np.ndarray):
            return item.argmax(0)
        return item.argmax().reshape(self.shape[1:])

    def steps(self) -> list[LazyQ] | None:
        """The lazy steps, or None when some step is only an array."""
        if any(isinstance(item, np.ndarray) for item in self._items):
            return None
        return list(self._items)  # type: ignore[arg-type]

    @property
    def materialised(self) -> int:
        """How many steps have been made into arrays (tests)."""
        return len(self._made) + sum(1 for item in self._items if isinstance(item, np.ndarray))
