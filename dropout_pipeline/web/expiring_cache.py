"""What a process may reuse for a while: a value kept for a number of seconds after it was
computed, the oldest dropped past a size. A computation that finds nothing (None) is never
kept, so something new is seen at once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class ExpiringCache(Generic[T]):
    def __init__(self, seconds: float, size: int = 4096):
        self.seconds, self.size, self._lock, self._entries = seconds, size, threading.Lock(), OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], T | None]) -> T | None:
        now = time.monotonic()
        with self._lock:
            kept = self._entries.get(key)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1]
        value = compute()
        if value is not None:
            with self._lock:
                self._entries[key] = (now, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return value
