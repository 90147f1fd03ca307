"""ImageCodec: the image codec users call, from Pillow images (or arrays) to lcodec files and back."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image

from lcodec.entropy_models.range_coder import StreamError

from . import metrics
from .byte_reader import stream_too_short
from .container import TILE_MAX, TILE_MIN, VERSION, VERSION_FLOAT, ImageHeader, pack_image, unpack_image
from .errors import FormatError, InputError, TargetError
from .image_io import (DEFAULT_MAX_PIXELS, PreparedImage, decode_alpha, encode_alpha, finish, prepare, read_image,
                       with_metadata)
from .latent_search import TileSearch, config_for_effort
from .quality import QUALITY_MIN, check_quality
from .registry import LoadedModel, find_model_for, get_model
from .transforms import HYPER_STRIDE, LATENT_STRIDE, from_pixels, pad_to_multiple, to_pixels

#: Bisection stops when the quality interval is this narrow.
TARGET_TOLERANCE = 0.01
#: Targets with effort > 0: latent searches at most (the effort-0 answer's quality, then predictions) ...
TARGET_EFFORT_TRIES = 3
#: ... aimed this far inside the target (log bits ratio, dB), as the prediction is a near miss as often as not.
TARGET_MARGIN_BITS = 0.003
TARGET_MARGIN_DB = 0.01
#: Images with more pixels than this are coded in tiles (smaller ones stay exactly as before).
UNTILED_MAX_PIXELS = 2048 * 2048
#: Side of a coding tile (own z and y streams, own entropy context) in pixels.
DEFAULT_TILE = 2048
#: g_a / g_s run on pixel tiles of this core side plus a margin that is computed and discarded;
#: the margin exceeds the transforms' receptive field, so tiled transforms equal untiled ones.
TRANSFORM_TILE = 512
TRANSFORM_MARGIN = 64
#: g_a's pixel tiles are larger: analysis runs once per encode and its tiles never reach the decoder,
#: so a larger core only trades memory (2.1-2.3 GB instead of 1.9 GB at the peak of a 3000x2000 photo)
#: for less margin recomputed (1.27x the core's pixels instead of 1.56x): encode 1.35x the per-pixel
#: time of a 768x512 image instead of 1.51x (docs/benchmarks.md, Speed).
ANALYSIS_TILE = 1024


@contextlib.contextmanager
def fixed_threads(enabled: bool = True) -> Iterator[None]:
    """Run torch with one intra-op thread, so results do not depend on the caller's thread count.

    Float reductions (convolutions, attention sums) are split differently with 2 threads than with 1,
    which moves predicted means (and, rarely, a scale index) by an ulp: synthesis and the float
    coding path of format versions 1-2 run here. The exact path of versions 3 to 5 needs no such guard.
    """
    n = torch.get_num_threads()
    if n == 1 or not enabled:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _balanced(total: int, most: int) -> list[tuple[int, int]]:
    """[0, total) cut into ceil(total / most) near-equal parts (a grid that depends on size only)."""
    n = max(1, -(-total // most))
    cuts = [round(i * total / n) for i in range(n + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def _tiles(total: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, total)) for a in range(0, total, step)]


@dataclass
class Analysis:
    """g_a output of one image, reused across the encodes of a rate/quality search."""

    prepared: PreparedImage
    y: torch.Tensor  # latent before gain, [1, M, H'/16, W'/16] of the image padded to a multiple of 64
    tile: int = 0  # coding tile side in pixels (0: untiled)


def stream_bytes(data: bytes | str | os.PathLike) -> bytes:
    """A file's bytes: `data` itself, or read from the path it names (InputError if unreadable)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    path = Path(data)
    if path.is_dir():
        raise InputError(f"input is a folder: {path}")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _interpolate(points: list[tuple[float, float]], q: float) -> float:
    """Piecewise-linear value at q of points [(quality, value)] sorted by quality, held at the ends."""
    if q <= points[0][0]:
        return points[0][1]
    for (q1, v1), (q2, v2) in zip(points, points[1:]):
        if q <= q2:
            return v1 if q2 == q1 else v1 + (v2 - v1) * (q - q1) / (q2 - q1)
    return points[-1][1]


def _solve(points: list[tuple[float, float]], value: float, near: float) -> float | None:
    """The quality nearest `near` where the piecewise-linear curve through `points` takes `value`
    (None if it never does)."""
    hits = [q1 + (value - v1) * (q2 - q1) / (v2 - v1)
            for (q1, v1), (q2, v2) in zip(points, points[1:]) if v1 != v2 and (v1 - value) * (v2 - value) <= 0]
    return min(hits, key=lambda q: abs(q - near)) if hits else None


class ImageCodec:
    """Encode and decode images with one learned model (any quality in [1, its levels]: 12 for the bundled one)."""

    def __init__(self, loaded: LoadedModel, device: str | torch.device = "cpu") -> None:
        self.loaded = loaded
        self.device = torch.device(device)
        self.model = loaded.model.to(self.device)
        #: Format version written: 4 (exact fixed-point entropy parameters, one stream per tile; 5 when
        #: the image carries metadata). 3 (z and y apart) and 1 (the old float path, whose files decode
        #: reliably only on the CPU) are kept for compatibility tests and benchmarks.
        self.write_version = VERSION

    @property
    def max_quality(self) -> float:
        """The model's top quality: its number of trained levels."""
        return float(self.model.config.levels)

    @property
    def levels(self) -> tuple[int, ...]:
        """The model's trained integer qualities, 1 to its top: what a sweep over "every level" covers."""
        return tuple(range(1, self.model.config.levels + 1))

    @classmethod
    def default(cls, device: str | torch.device = "cpu") -> "ImageCodec":
        """The bundled default model."""
        return cls(get_model(None), device)

    @classmethod
    def from_model(cls, spec: str | Path, device: str | torch.device = "cpu") -> "ImageCodec":
        """A bundled model by name or a weights file (from ``lcodec export``) by path."""
        return cls(get_model(spec), device)

    # ---- encoding ------------------------------------------------------------------------------

    def analyse(self, image: Image.Image | np.ndarray | PreparedImage | str | os.PathLike,
                tile: int | None = None) -> Analysis:
        """Run g_a once; `tile` forces tiled coding with that tile side (None: tiled above 2048x2048).

        `image` may be a path: the file is read as `lcodec encode` reads it (orientation, metadata)."""
        if self.loaded.decoder_only:
            raise InputError(f"model '{self.loaded.name}' ({self.loaded.path.name}) is an archived decoder: it "
                             f"decodes the files written with it but cannot encode")
        if isinstance(image, (str, os.PathLike)):
            image = read_image(image)
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        prepared = image if isinstance(image, PreparedImage) else prepare(image)
        h, w = prepared.rgb.shape[:2]
        if h < 1 or w < 1:
            raise InputError("image has no pixels")
        if tile is None:
            tile = DEFAULT_TILE if h * w > UNTILED_MAX_PIXELS else 0
        if tile and (tile % HYPER_STRIDE or not TILE_MIN <= tile <= TILE_MAX):
            raise ValueError(f"tile side must be a multiple of 64 in [{TILE_MIN}, {TILE_MAX}]")
        if tile:
            return Analysis(prepared, self._analyse_tiled(prepared.rgb), tile)
        x = from_pixels(prepared.rgb, self.device).unsqueeze(0)
        x = pad_to_multiple(x, HYPER_STRIDE)
        with torch.no_grad():
            y = self.model.g_a(x)
        return Analysis(prepared, y, 0)

    def _analyse_tiled(self, rgb: np.ndarray) -> torch.Tensor:
        """g_a over the replicate-padded image in overlapping pixel tiles (memory of one tile)."""
        h, w = rgb.shape[:2]
        ph, pw = h + (-h) % HYPER_STRIDE, w + (-w) % HYPER_STRIDE
        y = torch.empty(1, self.model.config.m, ph // LATENT_STRIDE, pw // LATENT_STRIDE)
        for rows in _tiles(ph, ANALYSIS_TILE):
            for cols in _tiles(pw, ANALYSIS_TILE):
                self._analyse_tile(rgb, y, rows, cols)
        return y

    def _analyse_tile(self, rgb: np.ndarray, y: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int],
                      analyse: Callable[[np.ndarray], torch.Tensor] | None = None) -> None:
        """g_a of the pixel rows [r0, r1) x columns [c0, c1) of `rgb` replicate-padded to `y`'s grid (multiples
        of 16), computed with a TRANSFORM_MARGIN of context and written into the latent `y` there.
        `analyse`: latent of a uint8 crop (default: the float g_a)."""
        (r0, r1), (c0, c1) = rows, cols
        h, w = rgb.shape[:2]
        s, m = LATENT_STRIDE, TRANSFORM_MARGIN
        ph, pw = y.shape[2] * s, y.shape[3] * s
        a0, a1 = max(r0 - m, 0), min(r1 + m, ph)
        b0, b1 = max(c0 - m, 0), min(c1 + m, pw)
        rr = np.minimum(np.arange(a0, a1), h - 1)  # index clamping = replicate padding
        cc = np.minimum(np.arange(b0, b1), w - 1)
        crop = np.ascontiguousarray(rgb[rr][:, cc])
        with torch.no_grad():
            yt = self.model.g_a(from_pixels(crop, self.device).unsqueeze(0)) if analyse is None else analyse(crop)
        i, j = (r0 - a0) // s, (c0 - b0) // s
        y[:, :, r0 // s : r1 // s, c0 // s : c1 // s] = yt[:, :, i : i + (r1 - r0) // s, j : j + (c1 - c0) // s].cpu()

    def _run_tiles(self, run: Callable[[Any], None], jobs: list) -> None:
        """Run `run(job)` for every tile job, each on one torch thread, the jobs concurrently on the
        caller's threads (torch releases the GIL inside its operators): results never depend on the
        thread count."""
        workers = torch.get_num_threads() if self.device.type == "cpu" else 1
        with fixed_threads():
            if workers > 1 and len(jobs) > 1:
                with ThreadPoolExecutor(min(workers, len(jobs))) as pool:
                    list(pool.map(run, jobs))
            else:
                for job in jobs:
                    run(job)

    def _analyse_fixed(self, rgb: np.ndarray, exact: bool = False) -> torch.Tensor:
        """g_a of the replicate-padded image (to a multiple of 64) on the fixed tile grid of `_synthesise`,
        each tile single-threaded: the same latent whatever the thread count, for a decoder that analyses
        what it has decoded (video formats 5 and 6). `exact`: g_a in fixed point (`codec.exact_analysis`),
        the same integers (float64, at 2^FRAC) on every device too."""
        h, w = rgb.shape[:2]
        ph, pw = h + (-h) % HYPER_STRIDE, w + (-w) % HYPER_STRIDE
        s, t = LATENT_STRIDE, TRANSFORM_TILE // LATENT_STRIDE
        y = torch.empty(1, self.model.config.m, ph // s, pw // s, dtype=torch.float64 if exact else torch.float32)
        jobs = [((r0 * s, r1 * s), (c0 * s, c1 * s))
                for r0, r1 in _balanced(ph // s, t) for c0, c1 in _balanced(pw // s, t)]
        analyse = self.model.g_a.exact_engine(self.device) if exact else None
        self._run_tiles(lambda job: self._analyse_tile(rgb, y, *job, analyse), jobs)
        return y

    def encode_analysis(self, a: Analysis, quality: float, effort: int = 0,
                        progress: Callable[[int, int], None] | None = None) -> tuple[bytes, torch.Tensor]:
        """Code an analysis (from `analyse`) at `quality`: the file, and the gained latent y_hat exactly as
        a decoder rebuilds it (one g_a pass serves any number of qualities). `effort` > 0 first searches
        each tile's latents (`codec.latent_search`), reporting `progress(done, total)` steps."""
        q = torch.tensor([quality], dtype=torch.float32, device=self.device)
        p = a.prepared
        h, w = p.rgb.shape[:2]
        gain = self.model.gain.gain(q).detach().cpu()
        exact = self.write_version != VERSION_FLOAT
        joint = self.write_version >= VERSION
        t = a.tile // LATENT_STRIDE
        tiles = len(_tiles(a.y.shape[2], t)) * len(_tiles(a.y.shape[3], t)) if a.tile else 1
        search = TileSearch(self.model, p.rgb, quality, effort, tiles, progress)
        with torch.no_grad(), fixed_threads(not exact):
            if not a.tile:
                y_in, z_in = search((a.y * gain.to(a.y.device)).to(self.device))
                streams, y_hat = self.model.compress_latent(y_in, exact, joint, z=z_in)
            else:
                streams, y_hat = [], torch.empty_like(a.y)
                for r0, r1 in _tiles(a.y.shape[2], t):
                    for c0, c1 in _tiles(a.y.shape[3], t):
                        yt, zt = search((a.y[:, :, r0:r1, c0:c1] * gain).to(self.device), r0, c0)
                        st, yh = self.model.compress_latent(yt, exact, joint, z=zt)
                        streams += st
                        y_hat[:, :, r0:r1, c0:c1] = yh.cpu()
        if p.alpha is not None:
            streams.append(encode_alpha(p.alpha))
        header = ImageHeader(self.loaded.name, self.loaded.weights_hash, quality, h, w, p.mode,
                             version=self.write_version, tile=a.tile)
        if self.write_version >= VERSION:  # the legacy writers (tests, benches) have no metadata record
            header.metadata, header.orientation = p.metadata, p.orientation
        return pack_image(header, streams), y_hat

    def encode(self, image: Image.Image | np.ndarray | PreparedImage, quality: float = 4.0,
               tile: int | None = None, effort: int = 0,
               progress: Callable[[int, int], None] | None = None) -> bytes:
        """Encode at a quality in [1, max_quality] (fractions interpolate between the trained levels).

        Images above 2048x2048 pixels are coded in `tile` x `tile` tiles (default 2048); pass
        `tile` to force tiling (a multiple of 64, at least 256). `effort` 0 (default) codes g_a's
        latents; 1 to 3 search each image's latents first, slower encodes for smaller files that
        any decoder reads (`codec.latent_search`); `progress(done, total)` reports search steps.
        """
        quality = self._quantized_quality(check_quality(quality, self.max_quality))
        config_for_effort(effort)  # ValueError for an unknown level, before any work
        return self.encode_analysis(self.analyse(image, tile), quality, effort, progress)[0]

    @staticmethod
    def _quantized_quality(q: float) -> float:
        # the header stores quality in 1/4096 steps: code with exactly the value the decoder will read
        return round(q * 4096) / 4096

    def encode_to_target(self, image: Image.Image | np.ndarray | PreparedImage | str | os.PathLike,
                         bpp: float | None = None, psnr: float | None = None, effort: int = 0,
                         progress: Callable[[int, int], None] | None = None) -> tuple[bytes, float]:
        """The best file that meets a target: among the qualities tried, the highest quality whose file
        fits `bpp`, or the smallest file whose PSNR reaches `psnr`; returns it and its quality.

        Size need not grow with quality (at the bottom of the ladder a higher level can code to fewer
        bytes), so no bisection over the whole range: every trained level is measured, then the gap
        between the best level and its neighbour on the far side of the target is bisected to
        TARGET_TOLERANCE, and the best of all points tried is returned.

        `effort` > 0 bisects at effort 0 first, then searches latents at the quality found and at up
        to two qualities predicted from the effort-0 curve (`_refine_target`); the file returned still
        meets the target, and is the effort-0 one if no searched file does better.
        """
        if (bpp is None) == (psnr is None):
            raise ValueError("give exactly one of bpp or psnr")
        config_for_effort(effort)  # ValueError for an unknown level, before any work
        a = self.analyse(image)
        h, w = a.prepared.rgb.shape[:2]
        tried: dict[float, tuple[bytes, float]] = {}  # quality -> (file, bpp or PSNR)

        def measure(q: float) -> float:
            if q not in tried:
                blob, y_hat = self.encode_analysis(a, q)
                value = (8 * len(blob) / (h * w) if bpp is not None
                         else metrics.psnr(self._synthesise(y_hat, q, h, w), a.prepared.rgb))
                tried[q] = blob, value
            return tried[q][1]

        def ok(q: float) -> bool:
            return measure(q) <= bpp if bpp is not None else measure(q) >= psnr

        def best() -> float | None:
            good = [q for q in tried if ok(q)]
            if not good:
                return None
            if bpp is not None:
                return max(good)
            return min(good, key=lambda q: (len(tried[q][0]), -tried[q][1]))

        levels = [float(q) for q in self.levels]
        for q in levels:
            measure(q)
        q0 = best()
        if q0 is None:
            raise self._unreachable(tried, bpp, psnr)
        # bisect towards the neighbour level across the target: above the best for bpp, below for PSNR
        lo, hi = (q0, q0 + 1) if bpp is not None else (q0 - 1, q0)
        if lo >= QUALITY_MIN and hi <= self.max_quality and ok(lo) != ok(hi):
            self._bisect(lo, hi, ok)
        q = best()
        if effort:
            return self._refine_target(a, {k: v for k, (_, v) in tried.items()}, q, tried[q][0], effort, bpp, psnr,
                                       progress)
        return tried[q][0], q

    @staticmethod
    def _unreachable(tried: dict[float, tuple[bytes, float]], bpp: float | None,
                     psnr: float | None) -> TargetError:
        """The error for a target that no quality tried meets (`tried`: quality -> (file, bpp or PSNR)),
        naming the closest the model comes."""
        values = [v for _, v in tried.values()]
        if bpp is not None:
            smallest = min(tried, key=lambda q: tried[q][1])
            return TargetError(f"cannot reach {bpp:g} bpp: the smallest file (quality {smallest:g}) is "
                               f"{min(values):.3f} bpp")
        return TargetError(f"cannot reach {psnr:g} dB: the best quality gives {max(values):.2f} dB")

    def _bisect(self, lo: float, hi: float, ok: Callable[[float], bool]) -> None:
        """Halve [lo, hi], whose ends lie on opposite sides of the target, down to TARGET_TOLERANCE or the
        header's quality step. Nothing is returned: `ok` measures (and keeps) every quality it is asked
        about, and the caller picks the best of them."""
        while hi - lo > TARGET_TOLERANCE:
            mid = self._quantized_quality((lo + hi) / 2)
            if mid in (lo, hi):
                break
            if ok(mid) == ok(lo):
                lo = mid
            else:
                hi = mid

    def _refine_target(self, a: Analysis, curve: dict[float, float], q0: float, blob0: bytes, effort: int,
                       bpp: float | None, psnr: float | None,
                       progress: Callable[[int, int], None] | None) -> tuple[bytes, float]:
        """Searched files around the effort-0 answer (`blob0` at `q0`) of a target; the best that meets it.

        The search moves a quality's file off the effort-0 curve `curve` (quality -> bpp or PSNR at
        effort 0): usually fewer bits at low qualities, more PSNR at high ones. Each searched file gives
        that offset (a bits ratio, or dB), and the next quality tried is where the effort-0 curve so
        offset meets the target (a small margin inside it), at most TARGET_EFFORT_TRIES searches. The
        answer is, among the searched files and `blob0`, the one with the highest PSNR within `bpp`,
        or the smallest that reaches `psnr`: never worse in the target's own terms than effort 0.
        """
        h, w = a.prepared.rgb.shape[:2]
        rate = bpp is not None
        target = bpp if rate else psnr

        def key(v: float) -> float:  # bits compare as ratios, PSNR as differences
            return float(np.log(max(v, 1e-12))) if rate else v

        points = sorted((q, key(v)) for q, v in curve.items())
        candidates: list[tuple[float, bytes, float]] = []  # (quality, file, PSNR): meeting the target
        if rate:
            candidates.append((q0, blob0, metrics.psnr(self._decode_pixels(blob0, q0, a), a.prepared.rgb)))
        else:
            candidates.append((q0, blob0, curve[q0]))
        tried = [q0]
        q = q0
        per = config_for_effort(effort).iterations * self._tile_count(a)
        for k in range(TARGET_EFFORT_TRIES):
            step = None if progress is None else (lambda d, n, k=k: progress(k * per + d, TARGET_EFFORT_TRIES * per))
            blob, y_hat = self.encode_analysis(a, q, effort, step)
            p = metrics.psnr(self._synthesise(y_hat, q, h, w), a.prepared.rgb)
            value = 8 * len(blob) / (h * w) if rate else p
            if (value <= bpp) if rate else (value >= psnr):
                candidates.append((q, blob, p))
            offset = key(value) - _interpolate(points, q)
            aim = key(target) - offset + (-TARGET_MARGIN_BITS if rate else TARGET_MARGIN_DB)
            nxt = _solve(points, aim, q0)
            if nxt is None:
                break
            nxt = self._quantized_quality(min(max(nxt, QUALITY_MIN), self.max_quality))
            if any(abs(nxt - t) < TARGET_TOLERANCE for t in tried):
                break
            tried.append(nxt)
            q = nxt
        if rate:
            q, blob, _ = max(candidates, key=lambda c: (c[2], c[0]))
        else:
            q, blob, _ = min(candidates, key=lambda c: (len(c[1]), -c[2]))
        return blob, q

    def _tile_count(self, a: Analysis) -> int:
        if not a.tile:
            return 1
        t = a.tile // LATENT_STRIDE
        return len(_tiles(a.y.shape[2], t)) * len(_tiles(a.y.shape[3], t))

    def _decode_pixels(self, blob: bytes, quality: float, a: Analysis) -> np.ndarray:
        """Pixels of an effort-0 file of analysis `a`: re-coded from the analysis (same bytes, same y_hat)."""
        h, w = a.prepared.rgb.shape[:2]
        again, y_hat = self.encode_analysis(a, quality)
        assert again == blob, "effort-0 coding is deterministic"
        return self._synthesise(y_hat, quality, h, w)

    # ---- decoding ------------------------------------------------------------------------------

    def _synthesise(self, y_hat: torch.Tensor, quality: float, h: int, w: int) -> np.ndarray:
        """g_s to uint8 pixels, on a fixed grid of overlapping latent tiles run in parallel.

        Every tile runs single-threaded and the grid depends only on the image size, so the pixels
        never depend on the thread count; the tiles themselves run concurrently on the caller's
        threads (torch releases the GIL inside its operators), and memory is bounded by a few tiles.
        """
        q = torch.tensor([quality], dtype=torch.float32, device=self.device)
        inv = self.model.gain.inverse_gain(q).detach().to(y_hat.device)
        out = np.empty((h, w, 3), dtype=np.uint8)
        s = LATENT_STRIDE
        t, m = TRANSFORM_TILE // s, TRANSFORM_MARGIN // s
        lh, lw = y_hat.shape[2:]
        jobs = [(r, c) for r in _balanced(-(-h // s), t) for c in _balanced(-(-w // s), t)]

        def run(job: tuple[tuple[int, int], tuple[int, int]]) -> None:
            (r0, r1), (c0, c1) = job
            a0, a1 = max(r0 - m, 0), min(r1 + m, lh)
            b0, b1 = max(c0 - m, 0), min(c1 + m, lw)
            with torch.no_grad():
                x = self.model.g_s((y_hat[:, :, a0:a1, b0:b1] * inv).to(self.device))
            ph, pw = min(r1 * s, h) - r0 * s, min(c1 * s, w) - c0 * s
            i, j = (r0 - a0) * s, (c0 - b0) * s
            out[r0 * s : r0 * s + ph, c0 * s : c0 * s + pw] = to_pixels(x[0, :, i : i + ph, j : j + pw])

        self._run_tiles(run, jobs)
        return out

    @classmethod
    def for_stream(cls, data: bytes | str | os.PathLike, extra_models: list[str | Path] | None = None,
                   device: str | torch.device = "cpu") -> "ImageCodec":
        """A codec holding the model a stream (bytes or a path) was made with (found by its weights hash).

        The whole file is validated first (CRC included), so a corrupt hash reads as corruption."""
        header = unpack_image(stream_bytes(data))[0]
        return cls(find_model_for(header.model, header.weights_hash, extra_models), device)

    def decode(self, data: bytes | str | os.PathLike, extra_models: list[str | Path] | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
        """Decode an lcodec image file (bytes or a path) to a Pillow image in the original mode and size,
        with the file's ICC profile, EXIF and XMP in its ``info`` (what ``save()`` writes back).

        Raises FormatError (not an lcodec file, unsupported version, corrupt or truncated stream),
        InputError (declared size above `max_pixels`, unreadable path) or UnknownModelError (weights
        not available).
        """
        header, streams = unpack_image(stream_bytes(data))
        if header.height * header.width > max_pixels:
            raise InputError(f"stream declares {header.width}x{header.height} = {header.width * header.height} "
                             f"pixels, above the limit of {max_pixels} (raise --max-pixels)")
        codec = self
        if header.weights_hash != self.loaded.weights_hash:
            codec = ImageCodec(find_model_for(header.model, header.weights_hash, extra_models), self.device)
        return codec._decode_checked(header, streams)

    def check_stored_quality(self, quality: float, what: str) -> None:
        """A stored quality above this model's levels can only come from a corrupt or forged file:
        FormatError, `what` naming the place (the container itself accepts the whole ladder)."""
        if quality > self.max_quality:
            raise FormatError(f"{what} (quality {quality:g} above the model's {self.max_quality:g} levels)")

    def _decode_checked(self, header: ImageHeader, streams: list[bytes]) -> Image.Image:
        has_alpha = header.mode in ("RGBA", "LA")
        self.check_stored_quality(header.quality, "corrupt header")
        if len(streams) != header.expected_streams():
            raise FormatError(f"corrupt file ({len(streams)} streams for a {header.mode} image)")
        h, w = header.height, header.width
        ph, pw = h + (-h) % HYPER_STRIDE, w + (-w) % HYPER_STRIDE
        tile = header.tile or max(ph, pw)
        grid = [(r, c) for r in _tiles(ph, tile) for c in _tiles(pw, tile)]
        per = header.streams_per_tile
        # cheap bound of size against bytes before any work: z symbols have a least cost per symbol
        for k, ((r0, r1), (c0, c1)) in enumerate(grid):
            if stream_too_short(streams[per * k], self.model.min_z_bits((r1 - r0, c1 - c0))):
                raise FormatError(f"corrupt file (stream too short for a {w}x{h} image)")
        s = LATENT_STRIDE
        y_hat = None
        try:
            with fixed_threads(not header.exact):
                for k, ((r0, r1), (c0, c1)) in enumerate(grid):
                    yt = self.model.decompress_latent(streams[per * k : per * (k + 1)], (r1 - r0, c1 - c0), self.device,
                                                      header.exact)
                    if len(grid) == 1:
                        y_hat = yt
                        break
                    if y_hat is None:
                        y_hat = torch.empty(1, yt.shape[1], ph // s, pw // s)
                    y_hat[:, :, r0 // s : r1 // s, c0 // s : c1 // s] = yt.cpu()
        except StreamError as exc:
            raise FormatError(f"corrupt stream: {exc}") from None
        rgb = self._synthesise(y_hat, header.quality, h, w)
        alpha = decode_alpha(streams[-1], h, w) if has_alpha else None
        return with_metadata(finish(rgb, header.mode, alpha), header.metadata)

    @staticmethod
    def info(data: bytes | str | os.PathLike) -> dict:
        """Header fields of a file (bytes or a path; validated, CRC checked) plus its size and bpp."""
        data = stream_bytes(data)
        header, _ = unpack_image(data)
        return header.to_dict(total_bytes=len(data))
