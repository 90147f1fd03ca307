"""Integer probability tables shared bit-for-bit by encoder and decoder.

A table set holds K discrete distributions over symbols ``offset[k] .. offset[k] + length[k] - 2``
plus one *escape* symbol (the last entry) that announces a value outside that range; escaped values
are then coded losslessly by the range coder (see ``range_coder``), so nothing is ever clipped.

Tables are built once (at export) from floating-point pmfs and stored as integers with the weights,
so both sides index the very same numbers whatever their floating-point hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

#: Probabilities are stored as integer frequencies summing to 2**PRECISION.
PRECISION = 16


@dataclass(frozen=True)
class CdfTables:
    """K integer pmfs (frequencies, escape last), each with its first symbol value."""

    freqs: np.ndarray  # int32 [K, max_len]; row k uses its first lengths[k] entries
    lengths: np.ndarray  # int32 [K]; number of entries including the escape symbol
    offsets: np.ndarray  # int32 [K]; symbol value of entry 0

    def __post_init__(self) -> None:
        if self.freqs.ndim != 2 or len(self.lengths) != len(self.freqs) or len(self.offsets) != len(self.freqs):
            raise ValueError("inconsistent CDF table shapes")

    @property
    def count(self) -> int:
        return int(self.freqs.shape[0])

    def to_tensor(self) -> torch.Tensor:
        """Pack into one int32 tensor [K, 2 + max_len] (length, offset, freqs...) for a state dict."""
        packed = np.concatenate(
            [self.lengths[:, None], self.offsets[:, None], self.freqs], axis=1
        ).astype(np.int32)
        return torch.from_numpy(packed)

    @classmethod
    def from_tensor(cls, packed: torch.Tensor) -> "CdfTables":
        arr = packed.cpu().numpy().astype(np.int32)
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise ValueError("packed CDF table has the wrong shape")
        tables = cls(freqs=arr[:, 2:].copy(), lengths=arr[:, 0].copy(), offsets=arr[:, 1].copy())
        tables.validate()
        return tables

    def validate(self) -> None:
        """Check that every table is a proper distribution (guards against corrupt weight files)."""
        total = 1 << PRECISION
        for k in range(self.count):
            n = int(self.lengths[k])
            if n < 2 or n > self.freqs.shape[1]:
                raise ValueError(f"CDF table {k} has invalid length {n}")
            row = self.freqs[k, :n]
            if (row <= 0).any() or int(row.sum()) != total:
                raise ValueError(f"CDF table {k} is not a normalised integer distribution")


def quantize_pmf(pmf: np.ndarray, tail_mass: float) -> np.ndarray:
    """Turn a float pmf (plus the mass outside it) into integer frequencies with an escape entry.

    Every symbol, and the escape, gets a frequency of at least 1 so that any value stays codable.
    """
    pmf = np.clip(np.asarray(pmf, dtype=np.float64), 0.0, None)
    probs = np.append(pmf, max(float(tail_mass), 0.0))
    probs = probs / probs.sum()
    total = 1 << PRECISION
    n = len(probs)
    freqs = np.maximum(np.floor(probs * (total - n)).astype(np.int64), 0) + 1
    # hand the rounding remainder to the most likely symbols, one each, deterministically
    deficit = total - int(freqs.sum())
    order = np.argsort(-probs, kind="stable")
    i = 0
    while deficit > 0:
        freqs[order[i % n]] += 1
        deficit -= 1
        i += 1
    while deficit < 0:
        j = order[i % n]
        if freqs[j] > 1:
            freqs[j] -= 1
            deficit += 1
        i += 1
    return freqs.astype(np.int32)


def stack_tables(rows: list[np.ndarray], offsets: list[int]) -> CdfTables:
    """Stack per-distribution frequency rows of different lengths into one table set."""
    max_len = max(len(r) for r in rows)
    freqs = np.zeros((len(rows), max_len), dtype=np.int32)
    for k, r in enumerate(rows):
        freqs[k, : len(r)] = r
    tables = CdfTables(
        freqs=freqs,
        lengths=np.array([len(r) for r in rows], dtype=np.int32),
        offsets=np.array(offsets, dtype=np.int32),
    )
    tables.validate()
    return tables


class TabledEntropyModel(nn.Module):
    """What the factorized prior and the Gaussian conditional share: their coding distributions are one
    `CdfTables` set, built once at export from float pmfs (`build_tables`), kept in the state dict as the
    int32 buffer ``cdf_table`` and taken back from it when weights load (`load_tables_from_buffer`), so
    coding never depends on floats. Subclasses say how many tables they hold (`_table_count`) and build
    them (`build_tables`, through `set_pmfs`); `_register_tables` registers the buffer (last, after the
    subclass's own buffers, which keeps the state dict's order)."""

    #: what the tables belong to, for error messages
    _what = "entropy model"

    def _register_tables(self) -> None:
        self.register_buffer("cdf_table", torch.zeros(0, 0, dtype=torch.int32), persistent=True)
        self._tables: CdfTables | None = None

    def _table_count(self) -> int:
        raise NotImplementedError

    def build_tables(self) -> None:
        raise NotImplementedError

    def set_pmfs(self, pmfs: list[np.ndarray], offsets: list[int]) -> None:
        """Tables from float pmfs (row k over symbols offsets[k]...), the mass outside each one going
        to its escape entry."""
        rows = [quantize_pmf(p, max(1.0 - float(np.sum(p)), 0.0)) for p in pmfs]
        self.set_tables(stack_tables(rows, offsets))

    def set_tables(self, tables: CdfTables) -> None:
        self._check_count(tables)
        self._tables = tables
        self.cdf_table = tables.to_tensor()

    def load_tables_from_buffer(self) -> None:
        tables = CdfTables.from_tensor(self.cdf_table)
        self._check_count(tables)
        self._tables = tables

    def _check_count(self, tables: CdfTables) -> None:
        if tables.count != self._table_count():
            raise ValueError(f"{self._what} table count ({tables.count}) does not match its "
                             f"{self._table_count()} distributions")

    @property
    def tables(self) -> CdfTables:
        if self._tables is None:
            raise RuntimeError("entropy tables not built: export the model or call build_tables()")
        return self._tables


class HyperpriorTables:
    """The table life cycle of a hyperprior model: a factorized prior on z (`self.z_prior`) and a
    Gaussian conditional on y (`self.context.gaussian`), as the image and the P-frame model both have."""

    def build_tables(self) -> None:
        """Build the integer CDF tables (done once at export; stored with the weights)."""
        self.z_prior.build_tables()
        self.context.gaussian.build_tables()

    def load_tables(self) -> None:
        """Take the tables from the loaded buffers (never rebuilt from floats at coding time)."""
        self.z_prior.load_tables_from_buffer()
        self.context.gaussian.load_tables_from_buffer()
