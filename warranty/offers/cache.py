"""A per-process cache of rendered offers, bounded in memory, invalidated by revision rows.

Offers for a product are the same for every shopper until the catalog, the rules, the store's
day or the time bucket of their tokens changes (``warranty.offers.tokens.bucket_expiry``):
so an answer worked out once is served again from here, as the bytes that were sent.

- **Key**: what the answer depends on: the product (a sku as asked, or an ad-hoc category,
  price and manufacturer's months), the rule version and the catalog's revision
  (``warranty.db.revisions``), the store's date and the currency. The token bucket is the
  entry's, not the key's: an entry of a past bucket is signed again for the current one
  (``warranty.offers.services.resign``: no read, no pricing) and replaced. Nothing
  of the visitor: offers are the same for both arms of the holdout; the embed decides
  whether to show them from the visitor's signed assignment, never from this answer.
- **Invalidation**: the revision rows are read at most once per ``revision_seconds`` per
  cache (one cache per app, i.e. per database and process); when either changed, every
  entry is dropped (none of their keys can be asked again). A catalog or rule change that
  committed is therefore served within ``revision_seconds`` plus one request.
- **Memory**: an LRU bounded by the bytes of its entries (their bodies and ETags plus a fixed
  estimate of the key, the entry and the dict's node), ``max_bytes`` from the settings.

No Flask here: the HTTP layer renders the bodies and holds one cache on its app.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from warranty.db.revisions import Revisions

# What an entry costs beside its body and ETag: the key tuple and its strings, the entry
# object, the OrderedDict's node (measured with tracemalloc by `python -m bench offers`).
ENTRY_OVERHEAD_BYTES = 560


@dataclass(frozen=True, slots=True)
class Entry:
    """One rendered answer: its JSON bytes, strong ETag, when its token bucket ends, and the
    product's manufacturer's months (signed in the tokens, not shown in the answer)."""

    body: bytes
    etag: str
    bucket_end: int  # unix time
    manufacturer_months: int = 0

    @property
    def size(self) -> int:
        """Bytes this entry counts against the cache's bound."""
        return len(self.body) + len(self.etag) + ENTRY_OVERHEAD_BYTES


class OfferCache:
    """Rendered offers of one database in one process (thread-safe)."""

    def __init__(self, *, max_bytes: int, revision_seconds: float,
                 read_revisions: Callable[[], Revisions],
                 committed_here: Callable[[], int] = lambda: 0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_bytes = max_bytes
        self.revision_seconds = revision_seconds
        self._read_revisions = read_revisions
        self._committed_here = committed_here  # this process's own changes: seen at once
        self._seen_here = committed_here()
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._bytes = 0
        self._revisions: Revisions | None = None
        self._checked_at = float("-inf")
        self.hits = self.misses = self.evictions = self.invalidations = 0
        self._memo: dict[Hashable, object] = {}  # small per-revision facts (catalog_only)

    # --- revisions -----------------------------------------------------------------------

    def revisions(self) -> Revisions:
        """The revisions as last read, read again when ``revision_seconds`` have passed."""
        now, here = self._clock(), self._committed_here()
        if (self._revisions is not None and here == self._seen_here
                and now - self._checked_at < self.revision_seconds):
            return self._revisions
        self._seen_here = here
        current = self._read_revisions()
        with self._lock:
            self._checked_at = now
            if current != self._revisions:
                if self._revisions is not None:
                    self.invalidations += 1
                self._entries.clear()
                self._memo.clear()
                self._bytes = 0
                self._revisions = current
        return current

    def memo(self, key: Hashable, compute: Callable[[], object]) -> object:
        """A small fact that holds until the revisions change (e.g. whether a catalog exists)."""
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    # --- entries ------------------------------------------------------------------------

    def get(self, key: Hashable) -> Entry | None:
        """The entry for ``key``, now the most recently used; None when absent."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Hashable, entry: Entry) -> None:
        """Keep ``entry``, dropping the least recently used ones beyond the bound."""
        if entry.size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = entry
            self._bytes += entry.size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size
                self.evictions += 1

    def stats(self) -> dict[str, int]:
        """Entries, their counted bytes and the bound, hits, misses, evictions."""
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes,
                    "max_bytes": self.max_bytes, "hits": self.hits, "misses": self.misses,
                    "evictions": self.evictions, "invalidations": self.invalidations}

    def __len__(self) -> int:
        return len(self._entries)
