"""VideoCodec: frames in, lcodec video file out, and back, one frame at a time.

I-frames are coded exactly like images (the image model). P-frames code the frame's latent with the
spatiotemporal entropy model conditioned on the two previous decoded latents; every frame is
reconstructed as g_s(y_hat_t) from its own latent (no pixel residual). A P-frame latent is predicted
from the references, so their quantization error can carry into it where the residual rounds to zero;
the P-frame model is trained on decoded chains to keep that small.
Encoder and decoder each hold only the two reference latents and the current frame.
Since video format 3 a P-frame may skip blocks (`video_motion`), since version 4 parts of blocks down
to 16x16 (`video_split`); a version-4 record is one range-coded stream (I: z, y; P: side data, z, y).
Version 5 searches vectors up to +-64 pixels and synthesises a P-frame with g_a of its motion-compensated
copy at the skipped latent positions (`_synthesise_p`). Version 6 codes a P-frame's latent against the
previous decoded frame aligned by one vector per 64x64 block and analysed by g_a in exact fixed point
(`_aligned_reference`), with the previous latent as the second reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np
import torch

from lcodec.entropy_models.fixed_point import exact_scale, to_real
from lcodec.entropy_models.range_coder import RangeDecoder, RangeEncoder, StreamError

from .byte_reader import stream_too_short
from .errors import FormatError, InputError
from .image_codec import ImageCodec, fixed_threads
from .image_io import DEFAULT_MAX_PIXELS
from .quality import check_quality, lambda_for
from .transforms import HYPER_STRIDE, from_pixels, pad_to_multiple
from .video_container import (
    FRAME_I,
    FRAME_P,
    MAX_VIDEO_SIDE,
    VERSION_REANALYSE,
    FrameRecord,
    VideoHeader,
    VideoReader,
    VideoWriter,
)
from . import video_motion as motion
from . import video_split as split
from .video_model import LoadedVideoModel, find_video_model_for, get_video_model
from .video_search import FrameSearch

assert motion.BLOCK == HYPER_STRIDE, "skip blocks are the z grid"

#: Frames larger than this are refused (video frames are coded untiled).
MAX_FRAME_PIXELS = 2048 * 2048
#: A P-frame whose streams exceed this share of the last I-frame's bytes is also tried as an I-frame
#: (below it intra cannot win at any sane distortion, and trying costs a second encode and two g_s runs).
TRY_INTRA_SHARE = 0.7
#: The skip decision weighs distortion at this multiple of the frame's lambda: a skipped block's copy
#: and its kept latent are what later frames predict from, so its error costs more than once.
#: Measured against format 2 (BD-rate, PSNR-RGB, qualities 2-8): scale 1 gave -16.1 % on bikes (6 frames)
#: and -6.2 % on carphone (8 frames), scale 3 -17.1 % and -7.5 %.
SKIP_LAMBDA_SCALE = 3.0
#: The format version a new codec writes: 5. Version 6 (`lcodec encode --aligned`) is smaller where
#: things move fast (bikes -9.1 %, 32 frames) but larger on slow motion at low rates (carphone +7.1 %) and
#: decodes at about 0.4x the speed, so it is the user's choice.
DEFAULT_VERSION = VERSION_REANALYSE


def rd_cost(nbytes: int, decoded: np.ndarray, source: np.ndarray, lam: float) -> float:
    """Rate-distortion cost in bits: 8 * bytes + lambda * 255^2 * MSE * pixels, the training loss
    (bpp + lambda * 255^2 * MSE) times the pixel count, so lambda is the frame quality's own."""
    err = decoded.astype(np.float32) - source.astype(np.float32)
    sse = float(np.einsum("ijk,ijk->", err, err, dtype=np.float64)) / 3.0
    return 8.0 * nbytes + lam * sse


@dataclass
class FrameStats:
    """What the encoder reports per frame."""

    index: int
    type: str
    bytes: int
    quality: float
    motion_bytes: int = 0  # side data (split and skip flags, vectors) of a P-frame, versions 3 and 4
    skipped: int = 0  # skipped area, in `units`: 64x64 blocks (version 3) or 16x16 cells (version 4)
    units: int = 0  # the frame's blocks (version 3) or cells (version 4)


class VideoCodec:
    """Encode and decode videos with one image model and one spatiotemporal entropy model."""

    def __init__(self, loaded: LoadedVideoModel, device: str | torch.device = "cpu") -> None:
        self.loaded = loaded
        self.device = torch.device(device)
        self.images = ImageCodec(loaded.image, self.device)
        self.model = self.images.model
        self.temporal = loaded.temporal.to(self.device)
        #: Video format version written: 6 (P-frames against the exactly re-analysed, block-aligned previous
        #: frame: smaller on fast motion, about 2.5x slower to decode; `lcodec encode --aligned`), 5 (the
        #: default), 4 (skip blocks split down to 16x16, one stream per P-frame), 3 (skip and motion on 64x64
        #: blocks), 2 (exact entropy parameters, no motion) or 1 (float path).
        self.write_version = DEFAULT_VERSION
        #: Smallest skip leaf the version-4 encoder uses (16, 32 or 64 pixels; any decodes).
        self.min_leaf = split.MIN_LEAF
        #: Version 4: price coded cells again under the first choice (a third coding pass) and choose again;
        #: without it 16 px leaves measured +19.8 % on bikes, with it -5.8 % (BD-rate against format 3, vector
        #: price 1; bench/results/video-motion/leaf-size.json).
        self.reprice = True

    @classmethod
    def default(cls, device: str | torch.device = "cpu") -> "VideoCodec":
        """The bundled default video model (and the image model it names)."""
        return cls(get_video_model(None), device)

    @classmethod
    def from_model(cls, spec: str | Path, device: str | torch.device = "cpu",
                   image_models: list[str | Path] | None = None) -> "VideoCodec":
        """A bundled video model by name or a video weights file (.lcv) by path."""
        return cls(get_video_model(spec, image_models), device)

    # ---- encoding ------------------------------------------------------------------------------

    def _latent(self, rgb: np.ndarray, quality: float) -> torch.Tensor:
        x = from_pixels(rgb, self.device)
        x = pad_to_multiple(x.unsqueeze(0), HYPER_STRIDE)
        q = torch.tensor([quality], dtype=torch.float32, device=self.device)
        with torch.no_grad():
            return self.model.g_a(x) * self.model.gain.gain(q)

    def encode(self, frames: Iterable[np.ndarray], out: BinaryIO, width: int, height: int,
               quality: float = 4.0, intra_period: int = 32, rate: Fraction = Fraction(25),
               on_frame: Callable[[FrameStats], None] | None = None, adaptive: bool = True,
               effort: int = 0) -> list[FrameStats]:
        """Encode RGB uint8 frames [H, W, 3] into `out` (a seekable binary file).

        `intra_period`: at most that many frames from one I-frame to the next; 0 (or -1, the older
        spelling): no bound, only the first frame is forced intra. `adaptive` (default): a frame is
        also coded as an I-frame where that costs less than P (rate + lambda * distortion at the
        frame's quality: scene cuts, fades); False gives I-frames exactly every `intra_period` frames.
        `effort` > 0 searches each frame's latents before coding it (`codec.video_search`): I-frames as
        images, P-frames against their decoded references (greedy per frame).
        """
        quality = ImageCodec._quantized_quality(check_quality(quality, self.images.max_quality))
        search = FrameSearch(self.model, self.temporal, quality, effort)  # ValueError for an unknown effort
        if not (1 <= width <= MAX_VIDEO_SIDE and 1 <= height <= MAX_VIDEO_SIDE) or width * height > MAX_FRAME_PIXELS:
            raise InputError(f"video frames of {width}x{height} are not supported (at most {MAX_FRAME_PIXELS} pixels)")
        if intra_period < -1:
            raise InputError("intra period must be 0 (first frame only) or a positive number of frames")
        period = 0 if intra_period in (-1, 0) else intra_period
        header = VideoHeader(self.loaded.name, self.loaded.weights_hash, self.loaded.image.weights_hash,
                             width, height, Fraction(rate).limit_denominator(1_000_000), period,
                             version=self.write_version)
        exact = header.exact
        lam = float(lambda_for(torch.tensor([quality])))
        writer = VideoWriter(out, header)
        stats: list[FrameStats] = []
        refs: list[torch.Tensor] = []
        since_intra, intra_bytes = 0, 0
        shown: np.ndarray | None = None  # the previous frame as decoded (version 3: skipped blocks copy it)
        for i, rgb in enumerate(frames):
            if rgb.shape != (height, width, 3) or rgb.dtype != np.uint8:
                raise InputError(f"frame {i} is {rgb.shape} {rgb.dtype}, expected ({height}, {width}, 3) uint8")
            y = self._latent(rgb, quality)
            intra = i == 0 or bool(period and since_intra >= period)
            skipped, rec, side = (0, 0), None, 0
            with torch.no_grad(), fixed_threads(not exact):
                if not intra:
                    ref1, ref2, chooser = refs[-1], refs[0], None
                    if header.aligned:
                        chooser = split.Chooser(rgb, shown, SKIP_LAMBDA_SCALE * lam, self.min_leaf, header.version)
                        ref1, ref2 = self._aligned_reference(shown, chooser.vecs[motion.BLOCK], quality), refs[-1]
                    yp, zp = search.inter(rgb, y, ref1, ref2)
                    if header.split:
                        streams, y_hat, rec, skipped, side = self._code_p4(yp, ref1, ref2, rgb, shown, quality,
                                                                           lam, header, zp, chooser)
                    elif header.motion:
                        streams, y_hat, rec, skipped = self._code_p(yp, ref1, ref2, rgb, shown, quality, lam, zp)
                        side = len(streams[0])
                    else:
                        streams, y_hat = self.temporal.compress(yp, ref1, ref2, exact, z=zp)
                    p_bytes = sum(map(len, streams))
                    if adaptive and p_bytes > TRY_INTRA_SHARE * intra_bytes:
                        i_streams, i_hat = self.model.compress_latent(y, exact, header.split)
                        i_bytes = sum(map(len, i_streams))
                        i_rec = self._reconstruct(i_hat, quality, height, width)
                        rec = self._reconstruct(y_hat, quality, height, width) if rec is None else rec
                        if rd_cost(i_bytes, i_rec, rgb, lam) < rd_cost(p_bytes, rec, rgb, lam):
                            intra, streams, y_hat, rec, skipped, side = True, i_streams, i_hat, i_rec, (0, 0), 0
                    refs = [y_hat] if intra else [refs[-1], y_hat]
                else:
                    y, z = search.intra(rgb, y)
                    streams, y_hat = self.model.compress_latent(y, exact, header.split, z=z)
                    refs = [y_hat]
            if header.motion:
                shown = self._reconstruct(y_hat, quality, height, width) if rec is None else rec
            record = FrameRecord(FRAME_I if intra else FRAME_P, i, quality, streams)
            st = FrameStats(i, record.type_name, writer.write(record), quality, side, *skipped)
            if intra:
                since_intra, intra_bytes = 1, sum(map(len, streams))
            else:
                since_intra += 1
            stats.append(st)
            if on_frame:
                on_frame(st)
        if not stats:
            raise InputError("no frames to encode")
        writer.finish()
        return stats

    def _code_p(self, y: torch.Tensor, ref1: torch.Tensor, ref2: torch.Tensor, rgb: np.ndarray, shown: np.ndarray,
                quality: float, lam: float,
                z: torch.Tensor | None = None) -> tuple[list[bytes], torch.Tensor, np.ndarray, tuple[int, int]]:
        """A version-3 P-frame: ([side, z, y] streams, y_hat, the decoded frame, (skipped blocks, blocks)).

        Two passes: the frame is coded with nothing skipped, which prices every block (its z and y
        bits) and gives its reconstruction; block matching on the previous decoded frame gives each
        block's copy; a block is skipped where lambda' * SSE(copy) + its vector's bits is below
        lambda' * SSE(coded) + its bits (lambda' = SKIP_LAMBDA_SCALE * lambda); then the frame is
        coded again with those blocks skipped."""
        h, w = rgb.shape[:2]
        streams, y_hat, bits = self.temporal.compress(y, ref1, ref2, True, z=z, costs=True)
        rec = self._reconstruct(y_hat, quality, h, w)
        vec = motion.estimate(rgb, shown)
        copy = motion.compensate(shown, vec)
        lam_skip = SKIP_LAMBDA_SCALE * lam
        skip_cost = lam_skip * motion.block_sse(rgb, copy) + motion.vector_bits(vec)
        skip = skip_cost < lam_skip * motion.block_sse(rgb, rec) + bits
        side = motion.encode_side(skip, vec)
        if skip.any():
            streams, y_hat = self.temporal.compress(y, ref1, ref2, True, z=z, skip=torch.from_numpy(skip))
            rec = self._synthesise_p(y_hat, skip, vec, shown, quality, False, motion.BLOCK)
        return [side, *streams], y_hat, rec, (int(skip.sum()), int(skip.size))

    def _code_p4(self, y: torch.Tensor, ref1: torch.Tensor, ref2: torch.Tensor, rgb: np.ndarray, shown: np.ndarray,
                 quality: float, lam: float, header: VideoHeader, z: torch.Tensor | None = None,
                 chooser: split.Chooser | None = None
                 ) -> tuple[list[bytes], torch.Tensor, np.ndarray, tuple[int, int], int]:
        """A version-4 to 6 P-frame: ([one stream], y_hat, the decoded frame, (skipped cells, cells), side bytes).

        As version 3, with the first pass's bits per latent position: `video_split.Chooser` picks each
        block's quadtree (leaves down to `min_leaf`) at lambda' = SKIP_LAMBDA_SCALE * lambda; with
        `reprice`, the frame is coded under that choice once more (no stream kept), its coded cells are
        priced by the SSE they got there, and the quadtree is chosen again; the side data, z and y are then
        coded into one stream. Side bytes: the side symbols' information content. Version 6: `chooser` is
        the one whose 64x64 block vectors aligned the reference `ref1`; they go into the side data."""
        h, w = rgb.shape[:2]
        _, y_hat, (z_bits, y_bits) = self.temporal.compress(y, ref1, ref2, True, z=z, position_costs=True)
        rec = self._reconstruct(y_hat, quality, h, w)
        if chooser is None:
            chooser = split.Chooser(rgb, shown, SKIP_LAMBDA_SCALE * lam, self.min_leaf, header.version)
        ref_vec = chooser.vecs[motion.BLOCK] if header.aligned else None
        sse = motion.block_sse(rgb, rec, split.CELL)
        size, skip, vec = chooser.choose(sse, z_bits, y_bits)
        plan = None  # (skip, vec, pixels) of the repricing pass: the same plan gives the same frame again
        if self.reprice and skip.any() and not skip.all():
            # g_s of a coded cell beside skipped ones sees what stands at their positions: price coded
            # cells by what this plan gives them, and choose again
            _, y_plan = self.temporal.compress(y, ref1, ref2, True, z=z, skip=torch.from_numpy(skip))
            plan = skip, vec, self._synthesise_p(y_plan, skip, vec, shown, quality, header.reanalyse)
            sse = np.where(skip, sse, motion.block_sse(rgb, plan[2], split.CELL))
            size, skip, vec = chooser.choose(sse, z_bits, y_bits)
        enc = RangeEncoder()
        side_bits = split.encode_side(enc.raw, size, skip, vec, header.version, ref_vec)
        _, y_hat = self.temporal.compress(y, ref1, ref2, True, z=z, skip=torch.from_numpy(skip), coder=enc)
        if plan is not None and np.array_equal(plan[0], skip) and np.array_equal(plan[1], vec):
            rec = plan[2]
        elif skip.any():
            rec = self._synthesise_p(y_hat, skip, vec, shown, quality, header.reanalyse)
        return [enc.finish()], y_hat, rec, (int(skip.sum()), int(skip.size)), int(round(side_bits / 8))

    def _aligned_reference(self, shown: np.ndarray, ref_vec: np.ndarray, quality: float) -> torch.Tensor:
        """Version 6: the gained latent of the previous decoded frame `shown` motion-compensated by each
        64x64 block's vector `ref_vec` [bh, bw, 2] (half-pel), by g_a in exact fixed point on fixed tiles:
        the same values on every device and thread count, so the entropy model may take it as its
        reference. The gain is rounded to 2^-14 from float64 on the host, as `exact_scale` takes it."""
        copy = motion.compensate(shown, ref_vec)
        ya = self.images._analyse_fixed(copy, exact=True)
        return to_real(exact_scale(ya, self.model.gain.host_gain(quality))).to(self.device)

    def _reconstruct(self, y_hat: torch.Tensor, quality: float, height: int, width: int) -> np.ndarray:
        """The frame the decoder will show for latent `y_hat` (the same g_s tiling, so the same pixels here)."""
        return self.images._synthesise(y_hat, quality, height, width)

    def _synthesise_p(self, y_hat: torch.Tensor, skip: np.ndarray, vec: np.ndarray, shown: np.ndarray,
                      quality: float, reanalyse: bool, block: int = split.CELL) -> np.ndarray:
        """A version-3 to 5 P-frame's pixels: g_s of its latent, skipped blocks of `block` pixels (64 in
        version 3, 16 px cells since) pasted from the previous frame `shown` under their vectors. With
        `reanalyse` (version 5, cells), g_s sees at skipped positions the
        gained g_a of that motion-compensated copy (the previous frame where nothing is skipped) rather
        than the reference latent they keep for the entropy model: that latent describes where the
        content was, not where it moved, and g_s spreads it into the coded cells around. Pixels only:
        the entropy model's inputs stay exact."""
        h, w = shown.shape[:2]
        if not skip.any():
            return self._reconstruct(y_hat, quality, h, w)
        if reanalyse:
            copy = motion.paste(shown.copy(), shown, skip, vec, block)
            q = torch.tensor([quality], dtype=torch.float32, device=self.device)
            ya = self.images._analyse_fixed(copy).to(y_hat.device) * self.model.gain.gain(q).to(y_hat.device)
            y_hat = torch.where(torch.from_numpy(skip).to(y_hat.device), ya, y_hat)
        return motion.paste(self._reconstruct(y_hat, quality, h, w), shown, skip, vec, block)

    # ---- decoding ------------------------------------------------------------------------------

    @classmethod
    def for_stream(cls, f: BinaryIO, extra_models: list[str | Path] | None = None,
                   device: str | torch.device = "cpu") -> "VideoCodec":
        """A codec holding the models a video file was made with (found by their hashes)."""
        header = VideoReader(f).header
        return cls(find_video_model_for(header.model, header.weights_hash, extra_models), device)

    def decode(self, f: BinaryIO, first: int = 0, last: int | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame number, RGB uint8 [H, W, 3]) for frames first..last (inclusive; default: all).

        Decoding starts at the last I-frame at or before `first` (frames before `first` are decoded
        as references but not yielded). Raises FormatError for corrupt records, naming the frame.
        """
        reader = VideoReader(f)
        h = reader.header
        if h.weights_hash != self.loaded.weights_hash or h.image_hash != self.loaded.image.weights_hash:
            raise FormatError("video was made with other weights than this codec holds (use VideoCodec.for_stream)")
        if h.width * h.height > min(max_pixels, MAX_FRAME_PIXELS):
            raise InputError(f"video declares {h.width}x{h.height} frames, above the limit")
        if not 0 <= first < h.frame_count:
            raise InputError(f"frame {first} is out of range: the video has {h.frame_count} frames "
                             f"(0..{h.frame_count - 1})")
        last = h.frame_count - 1 if last is None else min(last, h.frame_count - 1)
        start_frame, offset = reader.seek_point(first)
        ph, pw = h.height + (-h.height) % HYPER_STRIDE, h.width + (-h.width) % HYPER_STRIDE
        refs: list[torch.Tensor] = []
        shown: np.ndarray | None = None
        for record in reader.records(offset, start_frame):
            self.images.check_stored_quality(record.quality, f"frame {record.index}: corrupt record")
            y_hat, skip, vec, block = self._decode_latent(record, refs, (ph, pw), h, shown)
            refs = [y_hat] if record.type == FRAME_I else [refs[-1], y_hat]
            if record.index >= first or h.motion:  # versions 3 to 6: the next frame may copy blocks of this one
                if skip is None:
                    rgb = self.images._synthesise(y_hat, record.quality, h.height, h.width)
                else:
                    rgb = self._synthesise_p(y_hat, skip, vec, shown, record.quality, h.reanalyse, block)
                shown = rgb
            if record.index >= first:
                yield record.index, rgb
            if record.index >= last:
                return

    def _decode_latent(self, record: FrameRecord, refs: list[torch.Tensor], padded: tuple[int, int],
                       header: VideoHeader, shown: np.ndarray | None = None
                       ) -> tuple[torch.Tensor, np.ndarray | None, np.ndarray | None, int]:
        """y_hat of a record, and for a version-3 to 6 P-frame its skip flags and vectors (else None) and
        the pixels each flag covers (64 or 16). `shown`: the previous decoded frame (version 6 aligns it)."""
        kind = record.type_name
        exact = header.exact
        try:
            with torch.no_grad(), fixed_threads(not exact):
                if record.type == FRAME_I:
                    if stream_too_short(record.streams[0], self.model.min_z_bits(padded)):
                        raise StreamError("z stream too short for the frame size")
                    if header.split and len(record.streams) != 1:
                        raise StreamError("expected one stream (z, y)")
                    return self.model.decompress_latent(record.streams, padded, self.device, exact), None, None, 0
                if not refs:
                    raise StreamError("P-frame without a preceding I-frame")
                if not header.motion:
                    return self.temporal.decompress(record.streams, refs[-1], refs[0], exact), None, None, 0
                if header.split:
                    if len(record.streams) != 1:
                        raise StreamError("expected one stream (side data, z and y)")
                    dec = RangeDecoder(record.streams[0])
                    side = split.decode_side(dec.raw, *split.cell_grid(header.height, header.width), header.version)
                    ref1, ref2 = refs[-1], refs[0]
                    if header.aligned:
                        ref1, ref2 = self._aligned_reference(shown, side.ref, record.quality), refs[-1]
                    y_hat = self.temporal.decompress_from(dec, ref1, ref2, exact, torch.from_numpy(side.skip))
                    return y_hat, side.skip, side.vec, split.CELL
                if len(record.streams) != 3:
                    raise StreamError("expected a side stream, a z stream and a y stream")
                skip, vec = motion.decode_side(record.streams[0], *motion.grid(header.height, header.width))
                y_hat = self.temporal.decompress(record.streams[1:], refs[-1], refs[0], exact, torch.from_numpy(skip))
                return y_hat, skip, vec, motion.BLOCK
        except StreamError as exc:
            raise FormatError(f"frame {record.index} ({kind}-frame): corrupt stream: {exc}") from None

    @staticmethod
    def info(f: BinaryIO) -> dict:
        """Header fields plus one record per frame (index, type, bytes, quality; version 3-5 P-frames also
        motion_bytes (side data), latent_bytes (z and y) and skipped blocks, `_p4_info` for versions 4-5);
        all CRCs checked."""
        reader = VideoReader(f)
        head = reader.header
        blocks = motion.grid(head.height, head.width)
        frames = []
        for rec in reader.records():
            row = {"index": rec.index, "type": rec.type_name, "bytes": rec.nbytes(), "quality": round(rec.quality, 4)}
            if head.split and rec.type == FRAME_P and len(rec.streams) == 1:
                row.update(_p4_info(rec, head))
            elif head.motion and rec.type == FRAME_P and len(rec.streams) == 3:
                try:
                    skip, _ = motion.decode_side(rec.streams[0], *blocks)
                except StreamError as exc:
                    raise FormatError(f"frame {rec.index} (P-frame): corrupt side stream: {exc}") from None
                row.update(motion_bytes=len(rec.streams[0]), latent_bytes=len(rec.streams[1]) + len(rec.streams[2]),
                           skipped_blocks=int(skip.sum()), blocks=int(skip.size))
            frames.append(row)
        total = reader.size
        d = head.to_dict()
        d["bytes"] = total
        d["bpp"] = round(8 * total / (head.width * head.height * max(1, len(frames))), 5)
        d["frames"] = frames
        return d


def _p4_info(rec: FrameRecord, head: VideoHeader) -> dict:
    """What `info` shows of a version-4 to 6 P-frame: motion_bytes (the side data's share of the one stream,
    its symbols' information content rounded to bytes), latent_bytes (the rest of the stream),
    skipped_blocks / blocks (64x64 blocks with every leaf skipped: no z, no y), split_blocks (blocks split
    into smaller leaves), skipped_cells / cells (skipped area in 16x16 cells)."""
    try:
        size, skip, _, bits, _ = split.decode_side(RangeDecoder(rec.streams[0]).raw,
                                                   *split.cell_grid(head.height, head.width), head.version)
    except StreamError as exc:
        raise FormatError(f"frame {rec.index} (P-frame): corrupt side data: {exc}") from None
    k = motion.BLOCK // split.CELL
    gh, gw = skip.shape
    motion_bytes = min(len(rec.streams[0]), int(round(bits / 8)))
    return {"motion_bytes": motion_bytes, "latent_bytes": len(rec.streams[0]) - motion_bytes,
            "skipped_blocks": int(skip.reshape(gh // k, k, gw // k, k).all(axis=(1, 3)).sum()),
            "blocks": int(skip.size // (k * k)),
            "split_blocks": int((size.reshape(gh // k, k, gw // k, k)[:, 0, :, 0] < motion.BLOCK).sum()),
            "skipped_cells": int(skip.sum()), "cells": int(skip.size)}
