"""VideoCodec: frames in, lcodec video file out, and back, one frame at a time.

I-frames are coded exactly like images (the image model). P-frames code the frame's latent with the
spatiotemporal entropy model conditioned on the two previous decoded latents; every frame is
reconstructed as g_s(y_hat_t) from its own latent (no pixel residual). A P-frame latent is predicted
from the references, so their quantization error can carry into it where the residual rounds to zero;
the P-frame model is trained on decoded chains to keep that small.
Encoder and decoder each hold only the two reference latents and the current frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np
import torch

from lcodec.entropy_models.range_coder import StreamError

from .byte_reader import stream_too_short
from .errors import FormatError, InputError
from .image_codec import ImageCodec, fixed_threads
from .image_io import DEFAULT_MAX_PIXELS
from .quality import check_quality
from .transforms import HYPER_STRIDE, from_pixels, pad_to_multiple
from .video_container import (
    FRAME_I,
    FRAME_P,
    MAX_VIDEO_SIDE,
    VERSION as VIDEO_VERSION,
    FrameRecord,
    VideoHeader,
    VideoReader,
    VideoWriter,
)
from .video_model import LoadedVideoModel, find_video_model_for, get_video_model
from .video_search import FrameSearch

#: Frames larger than this are refused (video frames are coded untiled).
MAX_FRAME_PIXELS = 2048 * 2048


@dataclass
class FrameStats:
    """What the encoder reports per frame."""

    index: int
    type: str
    bytes: int
    quality: float


class VideoCodec:
    """Encode and decode videos with one image model and one spatiotemporal entropy model."""

    def __init__(self, loaded: LoadedVideoModel, device: str | torch.device = "cpu") -> None:
        self.loaded = loaded
        self.device = torch.device(device)
        self.images = ImageCodec(loaded.image, self.device)
        self.model = self.images.model
        self.temporal = loaded.temporal.to(self.device)
        #: Video format version written: 2 (exact entropy parameters); 1 writes the old float path.
        self.write_version = VIDEO_VERSION

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
               on_frame: Callable[[FrameStats], None] | None = None, effort: int = 0) -> list[FrameStats]:
        """Encode RGB uint8 frames [H, W, 3] into `out` (a seekable binary file).

        `intra_period`: an I-frame every that many frames; 0 (or -1, the older spelling): only the first frame is intra.
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
        writer = VideoWriter(out, header)
        stats: list[FrameStats] = []
        refs: list[torch.Tensor] = []
        for i, rgb in enumerate(frames):
            if rgb.shape != (height, width, 3) or rgb.dtype != np.uint8:
                raise InputError(f"frame {i} is {rgb.shape} {rgb.dtype}, expected ({height}, {width}, 3) uint8")
            y = self._latent(rgb, quality)
            intra = i == 0 or (period and i % period == 0)
            with torch.no_grad(), fixed_threads(not exact):
                if intra:
                    y, z = search.intra(rgb, y)
                    streams, y_hat = self.model.compress_latent(y, exact, z=z)
                    refs = [y_hat]
                else:
                    ref1, ref2 = refs[-1], refs[0]
                    y, z = search.inter(rgb, y, ref1, ref2)
                    streams, y_hat = self.temporal.compress(y, ref1, ref2, exact, z=z)
                    refs = [ref1, y_hat]
            record = FrameRecord(FRAME_I if intra else FRAME_P, i, quality, streams)
            st = FrameStats(i, record.type_name, writer.write(record), quality)
            stats.append(st)
            if on_frame:
                on_frame(st)
        if not stats:
            raise InputError("no frames to encode")
        writer.finish()
        return stats

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
            raise InputError(f"frame {first} is out of range: the video has {h.frame_count} frames (0..{h.frame_count - 1})")
        last = h.frame_count - 1 if last is None else min(last, h.frame_count - 1)
        start_frame, offset = reader.seek_point(first)
        ph, pw = h.height + (-h.height) % HYPER_STRIDE, h.width + (-h.width) % HYPER_STRIDE
        refs: list[torch.Tensor] = []
        for record in reader.records(offset, start_frame):
            self.images.check_stored_quality(record.quality, f"frame {record.index}: corrupt record")
            y_hat = self._decode_latent(record, refs, (ph, pw), h.exact)
            refs = [y_hat] if record.type == FRAME_I else [refs[-1], y_hat]
            if record.index >= first:
                yield record.index, self.images._synthesise(y_hat, record.quality, h.height, h.width)
            if record.index >= last:
                return

    def _decode_latent(self, record: FrameRecord, refs: list[torch.Tensor], padded: tuple[int, int],
                       exact: bool) -> torch.Tensor:
        kind = record.type_name
        try:
            with torch.no_grad(), fixed_threads(not exact):
                if record.type == FRAME_I:
                    if stream_too_short(record.streams[0], self.model.min_z_bits(padded)):
                        raise StreamError("z stream too short for the frame size")
                    return self.model.decompress_latent(record.streams, padded, self.device, exact)
                if not refs:
                    raise StreamError("P-frame without a preceding I-frame")
                return self.temporal.decompress(record.streams, refs[-1], refs[0], exact)
        except StreamError as exc:
            raise FormatError(f"frame {record.index} ({kind}-frame): corrupt stream: {exc}") from None

    @staticmethod
    def info(f: BinaryIO) -> dict:
        """Header fields plus one record per frame (index, type, bytes, quality); all CRCs checked."""
        reader = VideoReader(f)
        d = reader.header.to_dict()
        frames = []
        for rec in reader.records():
            frames.append({"index": rec.index, "type": rec.type_name, "bytes": rec.nbytes(),
                           "quality": round(rec.quality, 4)})
        total = reader.size
        d["bytes"] = total
        d["bpp"] = round(8 * total / (reader.header.width * reader.header.height * max(1, len(frames))), 5)
        d["frames"] = frames
        return d
