"""Video codecs the bench can run, in a low-delay configuration.

Low delay here means: no B-frames and no frame reordering (decode order = display order), one
intra frame then inter frames, an intra period that can be set, preset "medium" (or the codec's
nearest equivalent, named in the settings), one thread. x264, x265, SVT-AV1 and VP9 run through
PyAV; VVC runs through the static ffmpeg of imageio-ffmpeg (libvvenc, decoded by ffmpeg's own VVC
decoder). Every codec takes and returns 8-bit 4:2:0 planes; the rate is the sum of the real
elementary-stream bytes (no container).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .errors import BenchError, CodecUnavailable
from .selection import build_codec
from .image_codecs import ffmpeg_exe, ffmpeg_has, run_ffmpeg

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # 8-bit Y (H, W), U and V (H/2, W/2)


def planes_to_i420(p: Planes) -> np.ndarray:
    """Stack Y, U, V into the (H*3/2, W) layout PyAV uses for yuv420p."""
    y, u, v = p
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(y.shape[0] * 3 // 2, y.shape[1])


def i420_to_planes(a: np.ndarray, height: int, width: int) -> Planes:
    """Split PyAV's (H*3/2, W) yuv420p array into Y, U, V planes."""
    flat = a.reshape(-1)
    n, c = height * width, (height // 2) * (width // 2)
    return (flat[:n].reshape(height, width), flat[n:n + c].reshape(height // 2, width // 2),
            flat[n + c:n + 2 * c].reshape(height // 2, width // 2))


def planes_to_rgb(p: Planes) -> np.ndarray:
    """8-bit 4:2:0 planes -> uint8 RGB with one fixed conversion (swscale via PyAV) for every codec."""
    import av

    frame = av.VideoFrame.from_ndarray(planes_to_i420(p), format="yuv420p")
    return frame.to_ndarray(format="rgb24")


def effective_intra_period(intra_period: int, frames: int) -> int:
    """Frames between intra frames; 0 means 'only the first frame', i.e. longer than the clip."""
    return intra_period if intra_period > 0 else frames + 1


@dataclass
class VideoCodecAdapter:
    """Base class: a named codec, its swept setting (rate control value) and fixed parameters."""

    name: str = ""
    description: str = ""
    setting: str = "crf"
    values: tuple[float, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise CodecUnavailable if this codec cannot run here."""

    def encode(self, frames: list[Planes], value: float, intra_period: int, fps: Fraction) -> list[bytes]:
        """Encode 8-bit 4:2:0 frames; return the stream as a list of packets (real bytes)."""
        raise NotImplementedError

    def decode(self, packets: list[bytes], height: int, width: int) -> list[Planes]:
        """Decode packets back to 8-bit 4:2:0 planes, in display order."""
        raise NotImplementedError

    def settings(self, intra_period: int, frames: int) -> dict[str, Any]:
        """Everything needed to reproduce the sweep (stored in the result JSON)."""
        return {"codec": self.name, "swept": self.setting, "values": list(self.values), "frames": frames,
                "intra_period": intra_period, "intra_period_effective": effective_intra_period(intra_period, frames),
                **self.params}


class PyAVCodec(VideoCodecAdapter):
    """An encoder in PyAV's libavcodec, decoded by a PyAV decoder."""

    encoder: str = ""
    decoder: str = ""

    def check(self) -> None:
        import av

        for kind, name in (("w", self.encoder), ("r", self.decoder)):
            try:
                av.codec.Codec(name, kind)
            except Exception as exc:  # PyAV raises UnknownCodecError (a ValueError) or FFmpegError
                what = "encoder" if kind == "w" else "decoder"
                raise CodecUnavailable(f"PyAV's FFmpeg has no {name} {what}") from exc

    def options(self, value: float, keyint: int) -> dict[str, str]:
        raise NotImplementedError

    def encode(self, frames: list[Planes], value: float, intra_period: int, fps: Fraction) -> list[bytes]:
        import av

        h, w = frames[0][0].shape
        keyint = effective_intra_period(intra_period, len(frames))
        ctx = av.CodecContext.create(self.encoder, "w")
        ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
        ctx.time_base = Fraction(1, 1) / fps
        ctx.framerate = fps
        ctx.gop_size = keyint
        ctx.max_b_frames = 0
        ctx.thread_count = 1
        ctx.options = self.options(value, keyint)
        packets = []
        for i, p in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(planes_to_i420(p), format="yuv420p")
            frame.pts = i
            packets += ctx.encode(frame)
        packets += ctx.encode(None)
        return [bytes(pk) for pk in packets]

    def decode(self, packets: list[bytes], height: int, width: int) -> list[Planes]:
        import av

        ctx = av.CodecContext.create(self.decoder, "r")
        ctx.thread_count = 1
        out = []
        for data in packets:
            out += ctx.decode(av.Packet(data))
        out += ctx.decode(None)
        return [i420_to_planes(f.to_ndarray(format="yuv420p"), height, width) for f in out]


class X264Codec(PyAVCodec):
    encoder, decoder = "libx264", "h264"

    def __init__(self) -> None:
        super().__init__(name="x264", description="H.264 (libx264 via PyAV, preset medium, low delay P)",
                         values=(38, 34, 30, 26, 22, 18),
                         params={"library": "PyAV libx264", "preset": "medium", "bframes": 0, "scenecut": 0,
                                 "threads": 1, "rate_control": "crf", "decoder": "h264"})

    def options(self, value: float, keyint: int) -> dict[str, str]:
        return {"preset": "medium", "crf": str(value), "threads": "1",
                "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0:b-adapt=0:open-gop=0"}


class X265Codec(PyAVCodec):
    encoder, decoder = "libx265", "hevc"

    def __init__(self) -> None:
        super().__init__(name="x265", description="HEVC (libx265 via PyAV, preset medium, low delay P)",
                         values=(38, 34, 30, 26, 22, 18),
                         params={"library": "PyAV libx265", "preset": "medium", "bframes": 0, "scenecut": 0,
                                 "pools": "none", "frame-threads": 1, "rate_control": "crf", "decoder": "hevc"})

    def options(self, value: float, keyint: int) -> dict[str, str]:
        return {"preset": "medium", "crf": str(value),
                "x265-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0:open-gop=0:"
                               "pools=none:frame-threads=1:log-level=error"}


class SvtAv1Codec(PyAVCodec):
    encoder, decoder = "libsvtav1", "libdav1d"

    def __init__(self) -> None:
        super().__init__(name="svtav1", description="AV1 (SVT-AV1 via PyAV, preset 6, low-delay prediction structure)",
                         values=(55, 49, 43, 37, 31, 25),
                         params={"library": "PyAV libsvtav1", "preset": 6,
                                 "preset_note": "SVT-AV1 presets run 0 (slowest) to 13; 6 taken as 'medium'",
                                 "pred-struct": "1 (low delay)", "scd": 0, "lp": 1,
                                 "rate_control": "crf (SVT-AV1 reports it as CQP in low delay)",
                                 "decoder": "libdav1d (1 thread)"})

    def encode(self, frames: list[Planes], value: float, intra_period: int, fps: Fraction) -> list[bytes]:
        import os

        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1's own log: errors only
        return super().encode(frames, value, intra_period, fps)

    def options(self, value: float, keyint: int) -> dict[str, str]:
        return {"preset": "6", "crf": str(value),
                "svtav1-params": f"pred-struct=1:keyint={keyint}:scd=0:lp=1"}


class Vp9Codec(PyAVCodec):
    encoder, decoder = "libvpx-vp9", "vp9"

    def __init__(self) -> None:
        super().__init__(name="vp9", description="VP9 (libvpx via PyAV, good deadline cpu-used 2, no alt-ref)",
                         values=(56, 48, 40, 32, 24, 16),
                         params={"library": "PyAV libvpx-vp9", "deadline": "good", "cpu-used": 2,
                                 "preset_note": "libvpx has no presets; good/cpu-used 2 taken as 'medium'",
                                 "lag-in-frames": 0, "auto-alt-ref": 0, "rate_control": "constant quality (crf, b:v 0)",
                                 "threads": 1, "decoder": "vp9 (FFmpeg)"})

    def options(self, value: float, keyint: int) -> dict[str, str]:
        return {"deadline": "good", "cpu-used": "2", "crf": str(value), "b": "0", "lag-in-frames": "0",
                "auto-alt-ref": "0", "row-mt": "0", "tile-columns": "0", "threads": "1"}


def read_y4m(data: bytes) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], int, int, int]:
    """All frames of a 4:2:0 Y4M stream: (planes list, width, height, bit depth)."""
    header, _, rest = data.partition(b"\n")
    if not header.startswith(b"YUV4MPEG2"):
        raise RuntimeError("not a Y4M stream")
    fields = {t[:1]: t[1:] for t in header.split()[1:]}
    w, h = int(fields[b"W"]), int(fields[b"H"])
    colour = fields.get(b"C", b"420")
    if not colour.startswith(b"420"):
        raise RuntimeError(f"unexpected Y4M colour format {colour.decode()}")
    depth = int(colour[4:].split(b"p")[-1] or 8) if b"p" in colour[3:] else 8
    dtype = np.dtype("<u2") if depth > 8 else np.dtype(np.uint8)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    count = w * h + 2 * cw * ch
    frames, pos = [], 0
    while pos < len(rest):
        end = rest.index(b"\n", pos)
        if not rest[pos:end].startswith(b"FRAME"):
            raise RuntimeError("bad Y4M frame header")
        a = np.frombuffer(rest, dtype=dtype, count=count, offset=end + 1)
        n, c = w * h, cw * ch
        frames.append((a[:n].reshape(h, w), a[n:n + c].reshape(ch, cw), a[n + c:].reshape(ch, cw)))
        pos = end + 1 + count * dtype.itemsize
    return frames, w, h, depth


class VvcVideoCodec(VideoCodecAdapter):
    """VVC through libvvenc in imageio-ffmpeg's ffmpeg: low delay (no reordering), 8-bit input
    carried as 10-bit (libvvenc only takes yuv420p10le), decoded by ffmpeg's VVC decoder and
    rounded back to 8 bits."""

    def __init__(self, preset: str = "medium") -> None:
        super().__init__(name="vvc", setting="qp",
                         description=f"VVC (libvvenc via imageio-ffmpeg, preset {preset}, low delay, 10-bit internal)",
                         values=(47, 42, 37, 32, 27, 22),
                         params={"library": "ffmpeg libvvenc (imageio-ffmpeg)", "preset": preset, "qpa": 0,
                                 "threads": 1, "vvenc-params": "PicReordering=0:DecodingRefreshType=none:GOPSize=8:"
                                 "IntraPeriod=<intra period>",
                                 "note": "low-delay B: inter frames predict only from earlier frames",
                                 "pix_fmt": "yuv420p10le (8-bit samples << 2; decoded (x + 2) >> 2)",
                                 "decoder": "ffmpeg native vvc", "container": "raw .266 bitstream"})

    def check(self) -> None:
        ffmpeg_exe()
        if not ffmpeg_has("encoders", "libvvenc"):
            raise CodecUnavailable("imageio-ffmpeg's ffmpeg has no libvvenc encoder")
        if not ffmpeg_has("decoders", "vvc"):
            raise CodecUnavailable("imageio-ffmpeg's ffmpeg has no VVC decoder, so files cannot be checked")

    def encode(self, frames: list[Planes], value: float, intra_period: int, fps: Fraction) -> list[bytes]:
        h, w = frames[0][0].shape
        period = effective_intra_period(intra_period, len(frames))
        raw = b"".join((pl.astype("<u2") << 2).tobytes() for p in frames for pl in p)
        params = f"PicReordering=0:DecodingRefreshType=none:GOPSize=8:IntraPeriod={period}"
        return [run_ffmpeg(["-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s", f"{w}x{h}", "-r", str(fps),
                            "-i", "pipe:0", "-c:v", "libvvenc", "-preset", self.params["preset"],
                            "-qp", str(int(value)), "-qpa", "0", "-threads", "1", "-vvenc-params", params,
                            "-f", "vvc", "pipe:1"], raw)]

    def decode(self, packets: list[bytes], height: int, width: int) -> list[Planes]:
        out = run_ffmpeg(["-threads", "1", "-f", "vvc", "-i", "pipe:0", "-pix_fmt", "yuv420p10le", "-strict", "-1",
                          "-f", "yuv4mpegpipe", "pipe:1"], b"".join(packets))
        frames, w, h, depth = read_y4m(out)
        if (w, h) != (width, height):
            raise RuntimeError(f"VVC decoded {w}x{h}, expected {width}x{height}")
        shift = depth - 8
        return [tuple(np.clip((pl.astype(np.int32) + (1 << (shift - 1))) >> shift, 0, 255).astype(np.uint8)
                      for pl in f) for f in frames]


def rgb_to_planes(rgb: np.ndarray) -> Planes:
    """uint8 RGB -> 8-bit 4:2:0 planes with the same swscale conversion `planes_to_rgb` inverts."""
    import av

    a = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p").to_ndarray()
    return tuple(np.ascontiguousarray(x) for x in i420_to_planes(a, rgb.shape[0], rgb.shape[1]))


class OursVideoCodec(VideoCodecAdapter):
    """lcodec's learned video codec (bundled image + video weights), low delay: I then P-frames.

    It codes RGB: the clip's 4:2:0 planes go to RGB with the bench's one conversion (`planes_to_rgb`)
    and the decoded RGB comes back to 4:2:0 with its inverse, so PSNR-YUV and PSNR-RGB are measured on
    exactly the planes every other codec is measured on. The rate is the whole .lcd file (header,
    frame records, CRCs and index included), not only the range-coded payloads. The sweep is every
    integer quality of the image model, known once the weights load (`check()` or `settings()`).
    """

    def __init__(self, version: int | None = None) -> None:
        name, desc = "ours", ("lcodec video (spatiotemporal entropy model, skip + motion on blocks split down to "
                              "16x16, frame types by cost, low delay)")
        if version == 3:
            name, desc = "ours-v3", "lcodec video format 3 (skip + motion on whole 64x64 blocks, frame types by cost)"
        if version == 2:
            name, desc = "ours-v2", "lcodec video format 2 (spatiotemporal entropy model, no motion or skip, fixed GOP)"
        super().__init__(name=name, description=desc, setting="quality", values=(),
                         params={"threads": "torch default", "rate": "whole .lcd file"})
        self._codec = None
        self._version = version

    def check(self) -> None:
        try:
            self.codec()
        except Exception as exc:  # noqa: BLE001 - missing weights or model files
            raise CodecUnavailable(f"lcodec video model cannot load: {exc}") from exc

    def codec(self):
        if self._codec is None:
            from lcodec.codec.video_codec import VideoCodec

            self._codec = VideoCodec.default()
            if self._version is not None:
                self._codec.write_version = self._version
            self.values = self._codec.images.levels
        return self._codec

    def settings(self, intra_period: int, frames: int) -> dict[str, Any]:
        codec = self.codec()
        loaded = codec.loaded
        out = {**super().settings(intra_period, frames), "model": loaded.name,
               "weights_hash": loaded.weights_hash.hex(), "image_weights_hash": loaded.image.weights_hash.hex(),
               "format_version": codec.write_version}
        if codec.write_version >= 4:
            out["min_leaf"] = codec.min_leaf
        return out

    def encode(self, frames: list[Planes], value: float, intra_period: int, fps: Fraction) -> list[bytes]:
        import io

        h, w = frames[0][0].shape
        buf = io.BytesIO()
        self.codec().encode((planes_to_rgb(p) for p in frames), buf, w, h, float(value),
                            intra_period if intra_period > 0 else -1, fps, adaptive=self._version != 2)
        return [buf.getvalue()]

    def decode(self, packets: list[bytes], height: int, width: int) -> list[Planes]:
        import io

        return [rgb_to_planes(rgb) for _, rgb in self.codec().decode(io.BytesIO(b"".join(packets)))]


VIDEO_CODECS: dict[str, Callable[[], VideoCodecAdapter]] = {
    "ours": OursVideoCodec,
    "ours-v2": lambda: OursVideoCodec(version=2),
    "ours-v3": lambda: OursVideoCodec(version=3),
    "x264": X264Codec,
    "x265": X265Codec,
    "svtav1": SvtAv1Codec,
    "vp9": Vp9Codec,
    "vvc": VvcVideoCodec,
}


def make_video_codec(name: str) -> VideoCodecAdapter:
    """Build the adapter called `name` (BenchError for an unknown name)."""
    return build_codec(VIDEO_CODECS, name, "video")


def read_clip(path, frames: int, start: int = 0) -> tuple[list[Planes], Fraction]:
    """`frames` frames of a clip from frame `start` as 8-bit 4:2:0 planes, and its frame rate."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise BenchError(f"cannot read video {path}: {exc}") from None
    out: list[Planes] = []
    with container:
        if not container.streams.video:
            raise BenchError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_count = 1
        rate = stream.average_rate or stream.base_rate or Fraction(25)
        for i, frame in enumerate(container.decode(stream)):
            if i < start:
                continue
            if frame.height % 2 or frame.width % 2:
                raise BenchError(f"{path}: {frame.width}x{frame.height} is odd; 4:2:0 codecs need even sizes")
            planes = i420_to_planes(frame.to_ndarray(format="yuv420p"), frame.height, frame.width)
            out.append(tuple(np.ascontiguousarray(x) for x in planes))
            if len(out) >= frames:
                break
    if not out:
        raise BenchError(f"{path}: no frames decoded" + (f" from frame {start}" if start else ""))
    return out, Fraction(rate)

