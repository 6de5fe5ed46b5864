"""Pool rotation strategies: which healthy instance serves the next request.

- :class:`RoundRobin` -- the next eligible instance after the last one picked.
- :class:`LeastRecentlyUsed` -- the eligible instance picked least recently (never-picked
  instances first, in declaration order).
- :class:`SmoothWeighted` -- smooth weighted round-robin (as nginx does): each pick adds every
  eligible instance's weight to its running score, takes the highest score and subtracts the
  eligible total from it. Deterministic; over many picks each instance's share equals its
  weight's share, and picks of one instance are spread out rather than bunched.

``pick(eligible)`` takes a predicate over instance indexes (healthy, not yet excluded for this
request) and returns an index, or -1 when none is eligible. Picking advances the shared state:
a request that moves on to another instance takes the next one from the rotation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["LeastRecentlyUsed", "Rotation", "RoundRobin", "SmoothWeighted", "make_rotation"]

Eligible = Callable[[int], bool]


class Rotation(Protocol):
    params: tuple[object, ...]

    def pick(self, eligible: Eligible) -> int: ...


class RoundRobin:
    __slots__ = ("cursor", "n", "params")

    def __init__(self, n: int) -> None:
        self.n = n
        self.cursor = 0
        self.params: tuple[object, ...] = ("round_robin", n)

    def pick(self, eligible: Eligible) -> int:
        n, cursor = self.n, self.cursor
        for k in range(n):
            index = (cursor + k) % n
            if eligible(index):
                self.cursor = index + 1
                return index
        return -1


class LeastRecentlyUsed:
    __slots__ = ("_seq", "last", "params")

    def __init__(self, n: int) -> None:
        self.last = [-1] * n
        self._seq = 0
        self.params: tuple[object, ...] = ("least_recently_used", n)

    def pick(self, eligible: Eligible) -> int:
        best, best_seq = -1, 0
        for index, seq in enumerate(self.last):
            if (best < 0 or seq < best_seq) and eligible(index):
                best, best_seq = index, seq
        if best >= 0:
            self.last[best] = self._seq
            self._seq += 1
        return best


class SmoothWeighted:
    __slots__ = ("current", "params", "weights")

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = [float(w) for w in weights]
        self.current = [0.0] * len(self.weights)
        self.params: tuple[object, ...] = ("weighted", tuple(self.weights))

    def pick(self, eligible: Eligible) -> int:
        weights, current = self.weights, self.current
        best, total = -1, 0.0
        for index, weight in enumerate(weights):
            if not eligible(index):
                continue
            current[index] += weight
            total += weight
            if best < 0 or current[index] > current[best]:
                best = index
        if best >= 0:
            current[best] -= total
        return best


def make_rotation(strategy: str, weights: Sequence[float]) -> Rotation:
    if strategy == "least_recently_used":
        return LeastRecentlyUsed(len(weights))
    if strategy == "weighted":
        return SmoothWeighted(weights)
    return RoundRobin(len(weights))
