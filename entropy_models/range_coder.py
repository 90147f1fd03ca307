"""Range coding of integer symbols against integer CDF tables, with escapes for outliers.

Wraps constriction's queue (FIFO) range coder: a well-tested Rust implementation that codes numpy
arrays tens of millions of symbols per second, so the Python side only groups symbols. Symbols that
share a table are coded as one i.i.d. batch; the decoder can form the same groups because it knows
every symbol's table index before it decodes (they come from already decoded data).

Values outside a table's range are coded as the escape entry followed by an Elias-gamma code of the
overflow (bits coded with uniform models): no symbol is ever clipped.
"""

from __future__ import annotations

import numpy as np

import constriction

from .cdf_tables import CdfTables

_queue = constriction.stream.queue
_model = constriction.stream.model

_BIT = _model.Uniform(2)
_MAX_ESCAPE_BITS = 32  # an escaped value's Elias-gamma code has at most this many bits after its length
#: An escaped value first codes its overflow's bit count, uniformly over this many choices.
ESCAPE_LENGTH_CHOICES = _MAX_ESCAPE_BITS + 1
_LENGTH = _model.Uniform(ESCAPE_LENGTH_CHOICES)  # number of overflow bits, 0.._MAX_ESCAPE_BITS


class StreamError(ValueError):
    """The compressed data does not decode consistently (corrupt or truncated stream)."""


class _ModelCache:
    """constriction models built once per table set (building them costs more than coding a few symbols)."""

    def __init__(self, tables: CdfTables) -> None:
        self.tables = tables
        self._models: dict[int, object] = {}

    def get(self, k: int):
        m = self._models.get(k)
        if m is None:
            n = int(self.tables.lengths[k])
            probs = self.tables.freqs[k, :n].astype(np.float64)
            m = _model.Categorical(probs / probs.sum(), perfect=False)
            self._models[k] = m
        return m


_CACHES: dict[int, _ModelCache] = {}


def _cache_for(tables: CdfTables) -> _ModelCache:
    cache = _CACHES.get(id(tables))
    if cache is None or cache.tables is not tables:
        cache = _ModelCache(tables)
        _CACHES[id(tables)] = cache
    return cache


def _groups(indexes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable grouping of positions by table index: (order, used table indexes, group boundaries).

    Indexes are sorted as the smallest unsigned type that holds them (numpy radix-sorts 8/16-bit
    keys), which keeps grouping far cheaper than coding."""
    top = int(indexes.max())
    key = indexes.astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int64)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(indexes, minlength=top + 1)
    used = np.flatnonzero(counts)
    bounds = np.concatenate([[0], np.cumsum(counts[used])])
    return order, used, bounds


class RangeEncoder:
    """Accumulates symbols (in coding order) and returns the compressed bytes."""

    def __init__(self) -> None:
        self._enc = _queue.RangeEncoder()
        self.symbol_count = 0

    def encode(self, symbols: np.ndarray, indexes: np.ndarray, tables: CdfTables) -> None:
        """Code integer `symbols`, each against table `indexes[i]` of `tables` (flat arrays)."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        indexes = np.asarray(indexes, dtype=np.int64).ravel()
        if symbols.shape != indexes.shape:
            raise ValueError("symbols and indexes differ in size")
        if len(symbols) == 0:
            return
        if indexes.min() < 0 or indexes.max() >= tables.count:
            raise ValueError("table index out of range")
        cache = _cache_for(tables)
        order, uniq, bounds = _groups(indexes)
        for g, k in enumerate(uniq):
            vals = symbols[order[bounds[g] : bounds[g + 1]]] - int(tables.offsets[k])
            esc = int(tables.lengths[k]) - 1
            out = (vals < 0) | (vals >= esc)
            coded = np.where(out, esc, vals).astype(np.int32)
            self._enc.encode(coded, cache.get(int(k)))
            if out.any():
                self._encode_overflow(vals[out], esc)
        self.symbol_count += len(symbols)

    def _encode_overflow(self, vals: np.ndarray, esc: int) -> None:
        for v in vals.tolist():
            # map below-range to even, above-range to odd non-negative integers, then Elias-gamma
            u = 2 * (-v - 1) if v < 0 else 2 * (v - esc) + 1
            n = (u + 1).bit_length() - 1
            if n > _MAX_ESCAPE_BITS:  # the decoder refuses longer codes; no real latent comes near this
                raise ValueError(f"value {v} is beyond the range coder's escape range (about +-2^31 around the table)")
            self._enc.encode(np.array([n], dtype=np.int32), _LENGTH)
            if n:
                bits = [((u + 1) >> i) & 1 for i in range(n)]
                self._enc.encode(np.array(bits, dtype=np.int32), _BIT)

    @property
    def raw(self):
        """The underlying constriction queue encoder, for symbols with their own models (video side data)."""
        return self._enc

    def finish(self) -> bytes:
        """Flush and return the stream (little-endian 32-bit words)."""
        return self._enc.get_compressed().astype("<u4").tobytes()


class RangeDecoder:
    """Decodes symbols in the order they were encoded; raises StreamError on inconsistent data."""

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise StreamError("range-coded stream length is not a multiple of 4 bytes")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._dec = _queue.RangeDecoder(words)

    def decode(self, indexes: np.ndarray, tables: CdfTables) -> np.ndarray:
        """Decode one symbol per entry of `indexes` (same order as encoded); returns int64 values."""
        indexes = np.asarray(indexes, dtype=np.int64).ravel()
        out = np.empty(len(indexes), dtype=np.int64)
        if len(indexes) == 0:
            return out
        if indexes.min() < 0 or indexes.max() >= tables.count:
            raise StreamError("table index out of range")
        cache = _cache_for(tables)
        order, uniq, bounds = _groups(indexes)
        try:
            for g, k in enumerate(uniq):
                n = int(bounds[g + 1] - bounds[g])
                esc = int(tables.lengths[k]) - 1
                vals = np.asarray(self._dec.decode(cache.get(int(k)), n), dtype=np.int64)
                out_mask = vals == esc
                if out_mask.any():
                    vals[out_mask] = self._decode_overflow(int(out_mask.sum()), esc)
                out[order[bounds[g] : bounds[g + 1]]] = vals + int(tables.offsets[k])
        except StreamError:
            raise
        except Exception as exc:  # constriction reports exhausted/invalid data as generic errors
            raise StreamError(f"range decoder failed: {exc}") from None
        return out

    def _decode_overflow(self, count: int, esc: int) -> np.ndarray:
        res = np.empty(count, dtype=np.int64)
        for j in range(count):
            n = int(self._dec.decode(_LENGTH, 1)[0])
            if n > _MAX_ESCAPE_BITS:
                raise StreamError("escape code too long")
            u1 = 1 << n
            if n:
                bits = self._dec.decode(_BIT, n)
                for i, b in enumerate(bits.tolist()):
                    u1 |= int(b) << i
            u = u1 - 1
            res[j] = -(u // 2) - 1 if u % 2 == 0 else (u - 1) // 2 + esc
        return res

    @property
    def raw(self):
        """The underlying constriction queue decoder, for symbols with their own models (video side data)."""
        return self._dec

    def exhausted(self) -> bool:
        """True when (up to the coder's final padding) the whole stream has been consumed."""
        return bool(self._dec.maybe_exhausted())
