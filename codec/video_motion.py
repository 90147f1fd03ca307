"""Block motion and skip for P-frames (video format version 3): estimation, compensation, side stream.

A P-frame is split into BLOCK x BLOCK pixel blocks on the grid of the hyper-latent z (one z position,
4 x 4 latent positions per block). The encoder marks blocks as *skipped* where copying the previous
decoded frame, shifted by a motion vector, costs less than coding the block (rate + lambda *
distortion, decided in `codec.video_codec`). A skipped block costs its flag and its vector, nothing
else: its z and y symbols are not coded (zero on both sides), its latent keeps the reference latent
y_hat[t-1] there (exact fixed point, so later frames reference the same values on every device), and
its pixels are the motion-compensated copy of the previous decoded frame.

Why this split: motion only changes *pixels* (after g_s, which is float and not bit-exact across
devices), never the values that drive the entropy model, so parsing stays exact without an exact
g_s / g_a. Compensation is integer arithmetic on uint8 pixels anyway (half-pel by rounded averages),
so a decoder on another device gets the same copy of its own previous frame.

Side stream (range-coded with constriction, adaptive integer-count models, no learned parameters):
blocks in raster order; per block a skip flag (context: skipped left + skipped above, 3 contexts);
for a skipped block its vector (dy, dx) in half-pel units, each component coded as the difference to
the median of the left, above and above-right blocks' vectors (zero where a block is missing or not
skipped), with one adaptive model per component.
"""

from __future__ import annotations

import numpy as np

import constriction

from lcodec.entropy_models.range_coder import StreamError

#: Block side in pixels: one hyper-latent position (the z stride), 4 x 4 latent positions.
BLOCK = 64
#: Largest vector component of any version, in pixels (version 5; the decoder refuses more).
MV_RANGE = 64
#: Largest vector component of versions 3 and 4, in pixels: the side stream here is version 3's.
V3_RANGE = 16
#: Vector units per pixel (half-pel).
SUBPEL = 2
_VMAX = V3_RANGE * SUBPEL
_RES = 2 * _VMAX  # a residual lies in [-_RES, _RES]
_queue = constriction.stream.queue
_model = constriction.stream.model


class _Adaptive:
    """A categorical model over `n` symbols from integer counts, updated after every symbol: the same
    counts give the same float64 probabilities on every machine, so both sides agree."""

    def __init__(self, init: np.ndarray, step: int = 24) -> None:
        self.counts = init.astype(np.int64).copy()
        self.step = step

    def model(self):
        c = self.counts.astype(np.float64)
        return _model.Categorical(c / c.sum(), perfect=False)

    def update(self, s: int) -> None:
        self.counts[s] += self.step
        if self.counts.sum() > 1 << 16:
            self.counts = (self.counts + 1) // 2


def _residual_model(res: int = _RES, peak: int = 6) -> _Adaptive:
    """Initial counts of a vector residual in [-res, res]: 1 + 2^peak halving per step from zero."""
    k = np.abs(np.arange(-res, res + 1))
    return _Adaptive(1 + ((1 << peak) >> np.minimum(k, peak)))


def _predict(vec: np.ndarray, skip: np.ndarray, r: int, c: int) -> np.ndarray:
    """Median of the left, above and above-right neighbours' vectors (zero where absent or not skipped)."""
    bh, bw = skip.shape
    cands = []
    for rr, cc in ((r, c - 1), (r - 1, c), (r - 1, c + 1)):
        ok = 0 <= rr < bh and 0 <= cc < bw and skip[rr, cc]
        cands.append(vec[rr, cc] if ok else np.zeros(2, dtype=np.int64))
    return np.median(np.stack(cands), axis=0).astype(np.int64)


def encode_side(skip: np.ndarray, vec: np.ndarray) -> bytes:
    """Range-code skip flags [bh, bw] (bool) and vectors [bh, bw, 2] (half-pel, used where skipped)."""
    enc = _queue.RangeEncoder()
    flags = [_Adaptive(np.array([8, 8])) for _ in range(3)]
    comps = [_residual_model(), _residual_model()]
    bh, bw = skip.shape
    for r in range(bh):
        for c in range(bw):
            ctx = int(c > 0 and skip[r, c - 1]) + int(r > 0 and skip[r - 1, c])
            s = int(skip[r, c])
            enc.encode(np.array([s], dtype=np.int32), flags[ctx].model())
            flags[ctx].update(s)
            if s:
                pred = _predict(vec, skip, r, c)
                for j in range(2):
                    d = int(vec[r, c, j] - pred[j])
                    if abs(int(vec[r, c, j])) > _VMAX:
                        raise ValueError(f"vector component {int(vec[r, c, j])} beyond +-{_VMAX}")
                    enc.encode(np.array([d + _RES], dtype=np.int32), comps[j].model())
                    comps[j].update(d + _RES)
    return enc.get_compressed().astype("<u4").tobytes()


def decode_side(data: bytes, bh: int, bw: int) -> tuple[np.ndarray, np.ndarray]:
    """Skip flags and vectors of a bh x bw block grid from a side stream (StreamError if corrupt)."""
    if len(data) % 4:
        raise StreamError("side stream length is not a multiple of 4 bytes")
    dec = _queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    flags = [_Adaptive(np.array([8, 8])) for _ in range(3)]
    comps = [_residual_model(), _residual_model()]
    skip = np.zeros((bh, bw), dtype=bool)
    vec = np.zeros((bh, bw, 2), dtype=np.int64)
    try:
        for r in range(bh):
            for c in range(bw):
                ctx = int(c > 0 and skip[r, c - 1]) + int(r > 0 and skip[r - 1, c])
                s = int(dec.decode(flags[ctx].model(), 1)[0])
                flags[ctx].update(s)
                skip[r, c] = bool(s)
                if s:
                    pred = _predict(vec, skip, r, c)
                    for j in range(2):
                        u = int(dec.decode(comps[j].model(), 1)[0])
                        comps[j].update(u)
                        v = int(pred[j]) + u - _RES
                        if abs(v) > _VMAX:
                            raise StreamError(f"motion vector component {v} beyond +-{_VMAX}")
                        vec[r, c, j] = v
    except StreamError:
        raise
    except Exception as exc:  # constriction reports invalid data as generic errors
        raise StreamError(f"side stream does not decode: {exc}") from None
    if not dec.maybe_exhausted():
        raise StreamError("side stream has trailing data")
    return skip, vec


def grid(height: int, width: int, block: int = BLOCK) -> tuple[int, int]:
    """Blocks of `block` pixels (a divisor of BLOCK) per column and per row over the frame padded to the
    z grid (multiples of BLOCK)."""
    return -(-height // BLOCK) * (BLOCK // block), -(-width // BLOCK) * (BLOCK // block)


# ---- compensation (integer arithmetic on uint8 pixels) ---------------------------------------------

def _padded(ref: np.ndarray) -> np.ndarray:
    """`ref` [h, w, C] edge-extended by MV_RANGE + 1 on every side and up to the block grid (int32)."""
    h, w = ref.shape[:2]
    bh, bw = grid(h, w)
    p = MV_RANGE + 1
    return np.pad(ref.astype(np.int32), ((p, p + bh * BLOCK - h), (p, p + bw * BLOCK - w), (0, 0)), mode="edge")


def _block_at(pad: np.ndarray, y0: int, x0: int, vy: int, vx: int, hh: int = BLOCK,
              ww: int | None = None) -> np.ndarray:
    """The hh x ww (default BLOCK x BLOCK) prediction at pixel (y0, x0) shifted by half-pel (vy, vx),
    rounded averages."""
    ww = hh if ww is None else ww
    p = MV_RANGE + 1
    iy, fy = divmod(vy, SUBPEL)
    ix, fx = divmod(vx, SUBPEL)
    a = pad[p + y0 + iy : p + y0 + iy + hh + 1, p + x0 + ix : p + x0 + ix + ww + 1]
    if fy and fx:
        return (a[:-1, :-1] + a[1:, :-1] + a[:-1, 1:] + a[1:, 1:] + 2) >> 2
    if fy:
        return (a[:-1, :-1] + a[1:, :-1] + 1) >> 1
    if fx:
        return (a[:-1, :-1] + a[:-1, 1:] + 1) >> 1
    return a[:-1, :-1]


def paste(frame: np.ndarray, ref: np.ndarray, skip: np.ndarray, vec: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """`frame` with every skipped block (of `block` pixels) replaced by its motion-compensated copy of
    `ref` (in place). Compensation is per pixel, so a big block equals its smaller parts pasted alike."""
    if not skip.any():
        return frame
    h, w = frame.shape[:2]
    pad = _padded(ref)
    for r, c in zip(*np.nonzero(skip)):
        y0, x0 = int(r) * block, int(c) * block
        if y0 >= h or x0 >= w:
            continue
        blk = _block_at(pad, y0, x0, int(vec[r, c, 0]), int(vec[r, c, 1]), block)
        hh, ww = min(block, h - y0), min(block, w - x0)
        frame[y0 : y0 + hh, x0 : x0 + ww] = blk[:hh, :ww].astype(np.uint8)
    return frame


# ---- estimation (encoder only) -----------------------------------------------------------------------

def _luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0].astype(np.int32) * 77 + rgb[..., 1].astype(np.int32) * 150 + rgb[..., 2] * 29) >> 8


def _block_sums(a: np.ndarray, bh: int, bw: int, b: int) -> np.ndarray:
    return a.reshape(bh, b, bw, b).sum(axis=(1, 3))


def block_sse(a: np.ndarray, b: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Per-block sum of squared RGB errors / 3 (the frame's own pixels only) [bh, bw]."""
    h, w = a.shape[:2]
    bh, bw = grid(h, w, block)
    d = a.astype(np.float32) - b.astype(np.float32)
    e = np.einsum("ijk,ijk->ij", d, d) / 3.0
    e = np.pad(e, ((0, bh * block - h), (0, bw * block - w)))
    return _block_sums(e.astype(np.float64), bh, bw, block)


#: A centre and its eight neighbours, the centre first (candidates tie to it).
_AROUND = np.array([(0, 0)] + [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])


def _full_search(cur: np.ndarray, ref: np.ndarray, p: int, sizes: tuple[int, ...]) -> list[np.ndarray]:
    """Per block size (in samples of these planes), each block's integer offset within +-`p` of least SAD,
    every offset tried (one difference plane per offset serves every size; ties: the zero offset, then the
    first in raster order)."""
    H, W = cur.shape
    pad = np.pad(ref, p, mode="edge")
    best = [np.full((H // b, W // b), np.iinfo(np.int64).max, dtype=np.int64) for b in sizes]
    arg = [np.zeros((H // b, W // b, 2), dtype=np.int64) for b in sizes]
    offsets = [(0, 0)] + [(dy, dx) for dy in range(-p, p + 1) for dx in range(-p, p + 1) if dy or dx]
    for oy, ox in offsets:
        d = np.abs(cur - pad[p + oy : p + oy + H, p + ox : p + ox + W])
        for b, bs, ar in zip(sizes, best, arg):
            sad = _block_sums(d, H // b, W // b, b)
            better = sad < bs
            bs[better] = sad[better]
            ar[better] = (oy, ox)
    return arg


def _refine(cur: np.ndarray, ref: np.ndarray, p: int, block: int, centres: np.ndarray) -> np.ndarray:
    """Each block's best integer offset among its `centres` [bh, bw, K, 2] and the eight around each, kept
    within +-`p` (SAD; ties: the first centre, then raster order)."""
    bh, bw, k = centres.shape[:3]
    cand = np.clip(centres[:, :, :, None] + _AROUND, -p, p).reshape(bh, bw, k * len(_AROUND), 2)
    refpad = np.pad(ref, p + 1, mode="edge")[..., None]
    return _pick(_patch_sad(cur, refpad, block, SUBPEL * cand, p + 1), cand)


def _patch_sad(cur: np.ndarray, refpad: np.ndarray, block: int, vec: np.ndarray, p: int = MV_RANGE + 1) -> np.ndarray:
    """Luma SAD of every block of `cur` [gh*b, gw*b] against its prediction from the reference `refpad`
    [.., .., 1] (padded by `p` and more) under each of its candidate vectors `vec` [gh, gw, K, 2] (half-pel):
    the patches are gathered in one indexing step and interpolated per sub-pel phase. Returns [gh, gw, K]."""
    gh, gw, k = vec.shape[:3]
    b = block
    win = np.lib.stride_tricks.sliding_window_view(refpad[..., 0], (b + 1, b + 1))
    iy, fy = np.divmod(vec[..., 0], SUBPEL)
    ix, fx = np.divmod(vec[..., 1], SUBPEL)
    ty = p + np.arange(gh)[:, None, None] * b + iy
    tx = p + np.arange(gw)[None, :, None] * b + ix
    a = win[ty, tx]  # [gh, gw, K, b + 1, b + 1]
    blocks = cur.reshape(gh, b, gw, b).transpose(0, 2, 1, 3)[:, :, None]
    out = np.empty((gh, gw, k), dtype=np.int64)
    for py in (0, 1):
        for px in (0, 1):
            sel = (fy == py) & (fx == px)
            if not sel.any():
                continue
            s = a[sel]
            if py and px:
                pred = (s[:, :-1, :-1] + s[:, 1:, :-1] + s[:, :-1, 1:] + s[:, 1:, 1:] + 2) >> 2
            elif py:
                pred = (s[:, :-1, :-1] + s[:, 1:, :-1] + 1) >> 1
            elif px:
                pred = (s[:, :-1, :-1] + s[:, :-1, 1:] + 1) >> 1
            else:
                pred = s[:, :-1, :-1]
            out[sel] = np.abs(np.broadcast_to(blocks, a.shape[:3] + (b, b))[sel] - pred).sum(axis=(1, 2))
    return out


def _pick(sad: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Each block's first candidate of least SAD (a loop with strict < over the candidates in order)."""
    i = np.argmin(sad, axis=-1)
    return np.take_along_axis(vec, i[..., None, None], axis=2)[:, :, 0]


def estimate(cur: np.ndarray, ref: np.ndarray, block: int = BLOCK, max_px: int = V3_RANGE) -> np.ndarray:
    """Half-pel vectors [bh, bw, 2] of `cur`'s blocks of `block` pixels against `ref` (both uint8 RGB
    [h, w, 3]; `block` a divisor of BLOCK, at least 4), each component within +-`max_px` pixels."""
    return estimate_sizes(cur, ref, (block,), max_px)[0]


def _halve(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).sum(axis=(1, 3))


def estimate_sizes(cur: np.ndarray, ref: np.ndarray, blocks: tuple[int, ...],
                   max_px: int = V3_RANGE) -> list[np.ndarray]:
    """`estimate` for several block sizes (the planes built and the coarse differences taken once).

    Luma SAD, coarse to fine: a full search at half resolution (+-`max_px`/2) or, for ranges above 16
    pixels, at quarter resolution (+-`max_px`/4) refined by +-1 at half resolution; then the zero vector
    and +-1 pixel around twice that at full resolution; then the eight half-pel neighbours of the best.
    Each step is vectorised over blocks; ties go to the zero vector, then to the earlier candidate."""
    if not 1 <= max_px <= MV_RANGE or max_px % 4:
        raise ValueError(f"search range must be a multiple of 4 pixels up to {MV_RANGE}")
    h, w = cur.shape[:2]
    bh, bw = grid(h, w)
    ph, pw = bh * BLOCK, bw * BLOCK
    cy = np.pad(_luma(cur), ((0, ph - h), (0, pw - w)), mode="edge")
    ry = np.pad(_luma(ref), ((0, ph - h), (0, pw - w)), mode="edge")
    c2, r2 = _halve(cy), _halve(ry)
    if max_px > V3_RANGE:
        # quarter-resolution matches are noisy: the vectors of the block's 64 px block and of that one's
        # four neighbours, and the zero vector, are refined beside its own
        sizes = tuple(dict.fromkeys((BLOCK,) + tuple(blocks)))
        found = dict(zip(sizes, _full_search(_halve(c2), _halve(r2), max_px // 4, tuple(b // 4 for b in sizes))))
        big = np.pad(found[BLOCK], ((1, 1), (1, 1), (0, 0)), mode="edge")
        around = [big[1:-1, 1:-1], big[1:-1, :-2], big[:-2, 1:-1], big[1:-1, 2:], big[2:, 1:-1]]
        coarse = []
        for b in blocks:
            k = BLOCK // b
            cands = [found[b]] + [a.repeat(k, 0).repeat(k, 1) for a in around] + [np.zeros_like(found[b])]
            coarse.append(_refine(c2, r2, max_px // 2, b // 2, 2 * np.stack(cands, axis=2)))
    else:
        coarse = _full_search(c2, r2, max_px // 2, tuple(b // 2 for b in blocks))
    refpad = _padded(ry[:h, :w, None])
    near = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])  # sorted
    vmax = max_px * SUBPEL
    out = []
    for block, c in zip(blocks, coarse):
        gh, gw = ph // block, pw // block
        full = SUBPEL * np.clip(2 * c[:, :, None] + near, -max_px, max_px)
        full = np.concatenate([np.zeros((gh, gw, 1, 2), dtype=np.int64), full], axis=2)
        best = _pick(_patch_sad(cy, refpad, block, full), full)
        sub = best[:, :, None] + _AROUND
        sad = _patch_sad(cy, refpad, block, np.clip(sub, -vmax, vmax))
        sad[(np.abs(sub) > vmax).any(axis=-1)] = np.iinfo(np.int64).max
        out.append(_pick(sad, sub))
    return out


def compensate(ref: np.ndarray, vec: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """The whole motion-compensated prediction of a frame from `ref` (encoder: to price skipping)."""
    return paste(np.empty_like(ref), ref, np.ones(vec.shape[:2], dtype=bool), vec, block)


def vector_bits(vec: np.ndarray) -> np.ndarray:
    """A rough price of coding each block's vector (bits), for the skip decision only."""
    a = np.abs(vec).astype(np.float64)
    return 1.0 + (a > 0).sum(-1) * 2.0 + 2.0 * np.log2(1.0 + a).sum(-1)
