"""Split skip blocks for P-frames (video format versions 4 to 6): the side data and the encoder's choice.

Each 64x64 block (one z position, as in version 3) is a quadtree: a leaf, or split into four 32x32
quarters, each a leaf or split into four 16x16 cells (one latent position each). A leaf is coded or
skipped. A skipped leaf codes no y symbols: its latent positions keep the reference latent y_hat[t-1]
and its pixels are the motion-compensated copy of the previous decoded frame under the leaf's own
half-pel vector (`codec.video_motion`). A block's z symbols are coded unless all its leaves are skipped.

The state lives on the cell grid (16 px, the latent grid of the padded frame): `size` [gh, gw] (side of
the leaf holding each cell, in pixels), `skip` [gh, gw] (bool) and `vec` [gh, gw, 2] (half-pel, zero
where not skipped), so the entropy model takes `skip` as its per-position mask unchanged.

Side data (range-coded with adaptive integer-count models, as version 3's side stream): 64x64 blocks
in raster order, each quadtree depth first with quarters in raster order. Per node larger than 16 px a
split flag (context: how many of the left and above cells lie in smaller leaves than this node, one
model set per node size); per leaf a skip flag (context: skipped left + skipped above cell, one set per
leaf size); per skipped leaf its vector, each component a residual against the component-wise median of
the left, above and above-right cells' vectors (above-left where above-right is not decoded yet; zero
where a cell is outside the cell grid, not decoded yet or not skipped).

Version 6 codes before each block's quadtree the block's reference vector (half-pel, as a skip vector):
the decoder aligns the previous decoded frame by it for the P-frame's temporal reference
(`VideoCodec._aligned_reference`). Each component is a residual against the component-wise median of
the left, above and above-right blocks' reference vectors (above-left on the last column; zero outside
the grid), with models of its own; a skipped leaf's neighbours that are not skipped or not there count
as that reference vector in its vector's prediction (as zero before).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lcodec.entropy_models.range_coder import StreamError

from . import video_motion as motion

#: Smallest leaf: one latent position.
CELL = 16
#: Leaf sides from the whole block down.
SIZES = (motion.BLOCK, motion.BLOCK // 2, CELL)
#: Smallest leaf the encoder uses by default (any of SIZES decodes). Measured against format 3 (BD-rate,
#: PSNR-RGB, 8 frames, q2-8, with the encoder's repricing pass, vector price 1): 16 px bikes -5.8 %,
#: carphone -15.0 %; 32 px -3.6 %, -9.9 % (bench/results/video-motion/leaf-size.json).
MIN_LEAF = 16
#: The skip choice weighs `video_motion.vector_bits` by this, per version: many small leaves' vectors cost
#: more than that rough price. Measured (16 px leaves, repricing, BD-rate, PSNR-RGB, 8 frames, q2-8):
#: version 4 against format 3, 2 gave bikes -8.8 %, carphone -14.8 %, 1 gave -5.8 %, -15.0 %
#: (bench/results/video-motion/leaf-size.json); version 5 against version 4, bikes: 1 gave -35.7 %, 2
#: -34.2 % (bench/results/video-motion/v5-variants-bikes8.json).
VECTOR_PRICE = {4: 2.0, 5: 1.0, 6: 1.0}
#: Per version, the largest vector component in pixels and the peak of the residual models' initial
#: counts (1 + 2^peak halving per step away from zero): version 4 as version 3, version 5 four times the
#: range (fast motion, e.g. bikes' 18-21 px per frame) with a peak that keeps zero residuals as likely at
#: the start despite the wider alphabet.
RANGES = {4: (motion.V3_RANGE, 6), 5: (motion.MV_RANGE, 8), 6: (motion.MV_RANGE, 8)}
#: First version whose blocks carry a reference vector.
REF_VECTORS = 6


class Side(NamedTuple):
    """A P-frame's decoded side data on the cell grid (`ref`: [bh, bw, 2] reference vectors per 64x64
    block, version 6; None before) and its information content in bits."""

    size: np.ndarray
    skip: np.ndarray
    vec: np.ndarray
    bits: float
    ref: np.ndarray | None = None


class _Symbols:
    """Codes (encoder) or reads (decoder) one symbol at a time through one traversal, so both sides make
    the same model choices; sums the symbols' information content in bits."""

    def __init__(self, enc=None, dec=None) -> None:
        self.enc, self.dec = enc, dec
        self.bits = 0.0

    def code(self, model: motion._Adaptive, s: int | None) -> int:
        m = model.model()
        if self.dec is not None:
            s = int(self.dec.decode(m, 1)[0])
        else:
            self.enc.encode(np.array([s], dtype=np.int32), m)
        self.bits -= float(np.log2(model.counts[s] / model.counts.sum()))
        model.update(s)
        return s


class _Tree:
    """The adaptive models and the traversal shared by encoder and decoder."""

    def __init__(self, sym: _Symbols, size: np.ndarray, skip: np.ndarray, vec: np.ndarray,
                 max_px: int = motion.V3_RANGE, peak: int = 6, ref: np.ndarray | None = None) -> None:
        self.sym, self.size, self.skip, self.vec, self.ref = sym, size, skip, vec, ref
        self.vmax = max_px * motion.SUBPEL
        self.res = 2 * self.vmax  # a residual lies in [-res, res]
        self.decoding = sym.dec is not None
        self.done = np.zeros(skip.shape, dtype=bool)
        self.split_models = [[motion._Adaptive(np.array([8, 8])) for _ in range(3)] for _ in SIZES[:-1]]
        self.skip_models = [[motion._Adaptive(np.array([8, 8])) for _ in range(3)] for _ in SIZES]
        self.comps = [motion._residual_model(self.res, peak), motion._residual_model(self.res, peak)]
        self.ref_comps = [motion._residual_model(self.res, peak), motion._residual_model(self.res, peak)]

    def run(self) -> None:
        n = motion.BLOCK // CELL
        gh, gw = self.skip.shape
        for r in range(0, gh, n):
            for c in range(0, gw, n):
                if self.ref is not None:
                    self._ref_vector(r // n, c // n)
                self._node(r, c, n, 0)

    def _ref_vector(self, br: int, bc: int) -> None:
        """Code block (br, bc)'s reference vector against the median of its left, above and above-right
        (else above-left) blocks' (zero outside the grid); blocks go in raster order, so all are known."""
        bh, bw = self.ref.shape[:2]
        corner = (br - 1, bc + 1) if bc + 1 < bw else (br - 1, bc - 1)
        cands = [self.ref[rr, cc] if 0 <= rr < bh and 0 <= cc < bw else np.zeros(2, dtype=np.int64)
                 for rr, cc in ((br, bc - 1), (br - 1, bc), corner)]
        pred = np.median(np.stack(cands), axis=0).astype(np.int64)
        self.ref[br, bc] = self._vector(self.ref_comps, pred, self.ref[br, bc], "reference vector")

    def _vector(self, models: list, pred: np.ndarray, value: np.ndarray, name: str) -> list[int]:
        """Code (encoder: `value`) or read a half-pel vector as residuals against `pred` under `models`,
        one per component; a component beyond the version's range is a ValueError (encoder) or a
        StreamError (decoder)."""
        v = [0, 0]
        for j in range(2):
            if self.decoding:
                v[j] = int(pred[j]) + self.sym.code(models[j], None) - self.res
            else:
                v[j] = int(value[j])
            if abs(v[j]) > self.vmax:
                msg = f"{name} component {v[j]} beyond +-{self.vmax}"
                raise StreamError(msg) if self.decoding else ValueError(msg)
            if not self.decoding:
                self.sym.code(models[j], v[j] - int(pred[j]) + self.res)
        return v

    def _at(self, r: int, c: int) -> bool:
        return 0 <= r < self.skip.shape[0] and 0 <= c < self.skip.shape[1] and bool(self.done[r, c])

    def _node(self, r: int, c: int, n: int, level: int) -> None:
        side = n * CELL
        if side > CELL:
            ctx = int(self._at(r, c - 1) and self.size[r, c - 1] < side) + \
                int(self._at(r - 1, c) and self.size[r - 1, c] < side)
            split = self.sym.code(self.split_models[level][ctx], None if self.decoding else int(self.size[r, c] < side))
            if split:
                h = n // 2
                for dr, dc in ((0, 0), (0, h), (h, 0), (h, h)):
                    self._node(r + dr, c + dc, h, level + 1)
                return
        self._leaf(r, c, n, level)

    def _leaf(self, r: int, c: int, n: int, level: int) -> None:
        if self.decoding:
            self.size[r : r + n, c : c + n] = n * CELL
        ctx = int(self._at(r, c - 1) and self.skip[r, c - 1]) + int(self._at(r - 1, c) and self.skip[r - 1, c])
        s = self.sym.code(self.skip_models[level][ctx], None if self.decoding else int(self.skip[r, c]))
        if s:
            v = self._vector(self.comps, self._predict(r, c, n), self.vec[r, c], "motion vector")
            if self.decoding:
                self.skip[r : r + n, c : c + n] = True
                self.vec[r : r + n, c : c + n] = v
        self.done[r : r + n, c : c + n] = True

    def _predict(self, r: int, c: int, n: int) -> np.ndarray:
        """Median of the left, above and above-right (else above-left) cells' vectors; a cell that is not
        skipped or not there counts as zero, from version 6 on as the leaf's block's reference vector."""
        corner = (r - 1, c + n) if self._at(r - 1, c + n) else (r - 1, c - 1)
        k = motion.BLOCK // CELL
        absent = np.zeros(2, dtype=np.int64) if self.ref is None else self.ref[r // k, c // k]
        cands = []
        for rr, cc in ((r, c - 1), (r - 1, c), corner):
            ok = self._at(rr, cc) and self.skip[rr, cc]
            cands.append(self.vec[rr, cc] if ok else absent)
        return np.median(np.stack(cands), axis=0).astype(np.int64)


def encode_side(enc, size: np.ndarray, skip: np.ndarray, vec: np.ndarray, version: int = 4,
                ref: np.ndarray | None = None) -> float:
    """Code a frame's quadtree into the constriction queue encoder `enc` as video format `version` (4 to 6)
    codes it; returns its bits (information content). `size`, `skip`, `vec` on the cell grid, as `choose`
    gives them; `ref` (version 6 only): [bh, bw, 2] reference vectors of the 64x64 blocks."""
    if (ref is not None) != (version >= REF_VECTORS):
        raise ValueError(f"reference vectors are coded in version {REF_VECTORS} on, and only there")
    sym = _Symbols(enc=enc)
    _Tree(sym, size, skip, vec, *RANGES[version], ref=ref).run()
    return sym.bits


def decode_side(dec, gh: int, gw: int, version: int = 4) -> Side:
    """The side data of a gh x gw cell grid read from the constriction queue decoder `dec` as video
    format `version` (4 to 6) codes it (StreamError if the data is corrupt)."""
    n = motion.BLOCK // CELL
    if gh % n or gw % n:
        raise ValueError("the cell grid must cover whole 64x64 blocks")
    size = np.zeros((gh, gw), dtype=np.int64)
    skip = np.zeros((gh, gw), dtype=bool)
    vec = np.zeros((gh, gw, 2), dtype=np.int64)
    ref = np.zeros((gh // n, gw // n, 2), dtype=np.int64) if version >= REF_VECTORS else None
    sym = _Symbols(dec=dec)
    try:
        _Tree(sym, size, skip, vec, *RANGES[version], ref=ref).run()
    except StreamError:
        raise
    except Exception as exc:  # constriction reports invalid data as generic errors
        raise StreamError(f"side data does not decode: {exc}") from None
    return Side(size, skip, vec, sym.bits, ref)


def cell_grid(height: int, width: int) -> tuple[int, int]:
    """Cells per column and per row (the latent grid of the frame padded to 64x64 blocks)."""
    return motion.grid(height, width, CELL)


# ---- the encoder's choice ----------------------------------------------------------------------------

def _pool(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape
    return a.reshape(h // k, k, w // k, k).sum(axis=(1, 3))


def _up(a: np.ndarray, k: int) -> np.ndarray:
    return a.repeat(k, axis=0).repeat(k, axis=1)


#: A node's options: coded, skipped, split (each quarter its best), split with every leaf skipped.
CODED, SKIP, SPLIT, SPLIT_SKIP = 0, 1, 2, 3


class Chooser:
    """The encoder's quadtree choice for one P-frame: vectors and skip prices per leaf size once, then
    `choose` for given prices of coding (the encoder may reprice coded cells and choose again)."""

    def __init__(self, rgb: np.ndarray, shown: np.ndarray, lam: float, min_leaf: int = MIN_LEAF,
                 version: int = 4) -> None:
        if min_leaf not in SIZES:
            raise ValueError(f"smallest leaf must be one of {SIZES}")
        self.lam, self.min_leaf, self.hw = lam, min_leaf, rgb.shape[:2]
        self.sizes = [s for s in SIZES if s >= min_leaf]
        max_px = RANGES[version][0]
        self.vecs = dict(zip(self.sizes, motion.estimate_sizes(rgb, shown, tuple(self.sizes), max_px)))
        self.skip_costs = _skip_costs(rgb, shown, self.vecs, lam, VECTOR_PRICE[version])

    def choose(self, coded_sse: np.ndarray, z_bits: np.ndarray,
               y_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(size, skip, vec) of least cost, coding a cell costing lam * `coded_sse` [gh, gw] + `y_bits`
        [gh, gw] and a block's z `z_bits` [gh/4, gw/4]; a skipped leaf costs lam * SSE of its copy + its
        vector's rough bits. Bottom up, per node: coded, skipped, or split into the best of its quarters,
        or into quarters all skipped (at the top that saves the block's z); flags at one bit each.
        Vectorised over the nodes of each size."""
        cell_coded = self.lam * coded_sse + y_bits
        best = only = None  # per node of the size below: its best subtree's cost, and with every leaf skipped
        plans = []
        for s in reversed(self.sizes):
            coded = _pool(cell_coded, s // CELL)
            z = z_bits if s == motion.BLOCK else 0.0
            skipped = self.skip_costs[s]
            never = np.full_like(coded, np.inf)
            if best is None:
                split_best = split_only = never
            else:
                flags = 4 * (1 + (s // 2 > self.min_leaf))  # the quarters' skip (and split) flags
                split_best, split_only = _pool(best, 2) + flags + z, _pool(only, 2) + flags
            opts = np.stack([coded + z, skipped, split_best, split_only])
            opts_only = np.stack([never, skipped, never, split_only])
            plans.append((s, np.argmin(opts, axis=0), np.argmin(opts_only, axis=0)))
            best, only = opts.min(axis=0), opts_only.min(axis=0)
        return _apply(plans[::-1], self.vecs, self.hw)


def _skip_costs(rgb: np.ndarray, shown: np.ndarray, vecs: dict[int, np.ndarray], lam: float,
                price: float) -> dict[int, np.ndarray]:
    """Per size, the cost of skipping each node: lam * SSE of its copy + `price` x its vector's rough bits."""
    return {s: lam * motion.block_sse(rgb, motion.compensate(shown, v, s), s) + price * motion.vector_bits(v)
            for s, v in vecs.items()}


def _apply(plans: list[tuple[int, np.ndarray, np.ndarray]], vecs: dict[int, np.ndarray],
           hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cell-grid state of the choices taken top down (`plans`: (size, choice, choice among
    skip-only options) from the largest size)."""
    gh, gw = cell_grid(*hw)
    size = np.zeros((gh, gw), dtype=np.int64)
    skip = np.zeros((gh, gw), dtype=bool)
    vec = np.zeros((gh, gw, 2), dtype=np.int64)
    open_ = np.ones((gh, gw), dtype=bool)  # cells whose leaf is not decided yet
    only = np.zeros((gh, gw), dtype=bool)  # ... whose leaf must be skipped
    for s, choice, choice_only in plans:
        k = s // CELL
        c = np.where(only, _up(choice_only, k), _up(choice, k))
        leaf = open_ & (c <= SKIP)
        size[leaf] = s
        sk = leaf & (c == SKIP)
        skip |= sk
        vec[sk] = _up(vecs[s], k)[sk]
        only |= open_ & (c == SPLIT_SKIP)
        open_ &= ~leaf
    return size, skip, vec
