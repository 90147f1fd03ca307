"""Image codecs the bench can run, each a sweep of settings with every parameter written down.

An adapter turns a PIL RGB image into real file bytes and back. `check()` raises CodecUnavailable
(with the reason) when its package, plugin or ffmpeg encoder is missing; the runner then skips it
with a one-line notice. Thread counts are fixed to 1 everywhere so runs repeat and timings compare.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import CodecUnavailable
from .selection import build_codec
from .yuv import pad_even, rgb_to_yuv420, yuv420_to_rgb


@dataclass
class ImageCodecAdapter:
    """Base class: a named codec, the swept setting and the fixed parameters."""

    name: str = ""
    description: str = ""
    setting: str = "quality"  # what the swept value means for this codec
    values: tuple[float, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise CodecUnavailable if this codec cannot run here."""

    def encode(self, image: Image.Image, value: float) -> bytes:
        """Encode an RGB image at one sweep value into real file bytes."""
        raise NotImplementedError

    def decode(self, data: bytes) -> Image.Image:
        """Decode file bytes back to an RGB image."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Everything needed to reproduce the sweep (stored in the result JSON)."""
        return {"codec": self.name, "swept": self.setting, "values": list(self.values), **self.params}


def _open_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


class PillowCodec(ImageCodecAdapter):
    """A codec Pillow writes natively; `pil_format` and `params` go to Image.save."""

    pil_format: str = ""

    def check(self) -> None:
        from PIL import features

        feature = {"JPEG": "jpg", "WEBP": "webp", "AVIF": "avif", "JPEG2000": "jpg_2000"}[self.pil_format]
        if not features.check(feature):
            raise CodecUnavailable(f"this Pillow has no {self.pil_format} support")

    def save_kwargs(self, value: float) -> dict[str, Any]:
        return {"quality": int(value)}

    def encode(self, image: Image.Image, value: float) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format=self.pil_format, **self.params_for_pillow(), **self.save_kwargs(value))
        return buf.getvalue()

    def params_for_pillow(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k not in ("library", "threads", "note")}

    def decode(self, data: bytes) -> Image.Image:
        return _open_rgb(data)


class JpegCodec(PillowCodec):
    pil_format = "JPEG"

    def __init__(self, subsampling: str) -> None:
        code = {"4:2:0": 2, "4:4:4": 0}[subsampling]
        super().__init__(
            name="jpeg" if subsampling == "4:2:0" else "jpeg444",
            description=f"JPEG {subsampling} (Pillow/libjpeg-turbo, optimized Huffman tables)",
            values=(5, 10, 20, 30, 45, 60, 75, 85, 92, 97),
            params={"library": "Pillow", "subsampling": code, "optimize": True, "threads": 1},
        )


class WebpCodec(PillowCodec):
    pil_format = "WEBP"

    def __init__(self) -> None:
        super().__init__(name="webp", description="WebP lossy 4:2:0 (Pillow/libwebp, method 6)",
                         values=(5, 15, 30, 50, 70, 85, 95, 100),
                         params={"library": "Pillow", "method": 6, "threads": 1})


class AvifCodec(PillowCodec):
    """AVIF 4:4:4 through Pillow's own AVIF plugin (libavif with the aom encoder)."""

    pil_format = "AVIF"

    def __init__(self) -> None:
        super().__init__(name="avif", description="AVIF 4:4:4 (Pillow/libavif, aom, speed 6)",
                         values=(5, 15, 30, 45, 60, 70, 80, 90),
                         params={"library": "Pillow", "subsampling": "4:4:4", "speed": 6, "encoder": "aom",
                                 "max_threads": 1, "range": "full"})

    def check(self) -> None:
        super().check()
        from PIL import _avif

        if not _avif.encoder_codec_available("aom"):
            raise CodecUnavailable("Pillow's libavif has no aom encoder")

    def params_for_pillow(self) -> dict[str, Any]:
        kw = super().params_for_pillow()
        kw["codec"] = kw.pop("encoder")  # Pillow's name for the AV1 encoder choice
        return kw

    def decode(self, data: bytes) -> Image.Image:
        from PIL import AvifImagePlugin

        AvifImagePlugin.DEFAULT_MAX_THREADS = 1  # Pillow's documented knob for decoder threads
        return _open_rgb(data)


class Jp2kCodec(PillowCodec):
    """JPEG 2000 (OpenJPEG via Pillow): 9/7 irreversible wavelet with the colour transform on."""

    pil_format = "JPEG2000"

    def __init__(self) -> None:
        super().__init__(name="jp2k", setting="compression ratio",
                         description="JPEG 2000 (Pillow/OpenJPEG, 9/7 irreversible, mct on, rate by ratio)",
                         values=(480, 240, 120, 60, 34, 24, 16, 12),
                         params={"library": "Pillow", "irreversible": True, "mct": 1, "quality_mode": "rates",
                                 "no_jp2": True, "threads": 1})

    def save_kwargs(self, value: float) -> dict[str, Any]:
        return {"quality_layers": [float(value)]}


class HeifCodec(ImageCodecAdapter):
    """HEIF = HEVC intra 4:4:4 (pillow-heif: libheif + x265), the BPG-like anchor."""

    def __init__(self) -> None:
        super().__init__(name="heif", description="HEIF: HEVC intra 4:4:4 (pillow-heif/libheif, x265 preset slow)",
                         values=(5, 15, 25, 35, 45, 55, 65, 75),
                         params={"library": "pillow-heif", "chroma": 444,
                                 "enc_params": {"preset": "slow", "x265:pools": "none", "x265:frame-threads": "1"},
                                 "decode_threads": 1})

    def check(self) -> None:
        try:
            import pillow_heif
        except ImportError as exc:
            raise CodecUnavailable("pillow-heif is not installed (pip install pillow-heif)") from exc
        if "x265" not in str(pillow_heif.libheif_info().get("HEIF", "")):
            raise CodecUnavailable("pillow-heif has no HEVC (x265) encoder")

    def encode(self, image: Image.Image, value: float) -> bytes:
        import pillow_heif

        buf = io.BytesIO()
        pillow_heif.from_pillow(image).save(buf, format="HEIF", quality=int(value), chroma=self.params["chroma"],
                                            enc_params=dict(self.params["enc_params"]))
        return buf.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        import pillow_heif

        pillow_heif.options.DECODE_THREADS = 1
        return pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True).to_pillow().convert("RGB")


class JxlCodec(ImageCodecAdapter):
    """JPEG XL (pillow-jxl-plugin: libjxl VarDCT), distance set through the quality scale."""

    def __init__(self) -> None:
        super().__init__(name="jxl", description="JPEG XL VarDCT (pillow-jxl-plugin/libjxl, effort 7)",
                         values=(5, 20, 40, 60, 75, 85, 92, 97),
                         params={"library": "pillow-jxl-plugin", "effort": 7, "decoding_speed": 0,
                                 "num_threads": 0, "note": "num_threads 0 = no parallel runner (1 thread)"})

    def check(self) -> None:
        try:
            import pillow_jxl  # noqa: F401
        except ImportError as exc:
            raise CodecUnavailable("pillow-jxl-plugin is not installed (pip install pillow-jxl-plugin)") from exc

    def encode(self, image: Image.Image, value: float) -> bytes:
        from pillow_jxl import Encoder

        enc = Encoder(mode="RGB", lossless=False, quality=int(value), decoding_speed=self.params["decoding_speed"],
                      effort=self.params["effort"], use_container=False, use_original_profile=False,
                      num_threads=self.params["num_threads"])
        return enc(image.tobytes(), image.width, image.height, jpeg_encode=False)

    def decode(self, data: bytes) -> Image.Image:
        from pillow_jxl import Decoder

        _jpeg, info, pixels, _icc, _boxes = Decoder(num_threads=self.params["num_threads"])(data)
        return Image.frombytes(info.mode, (info.width, info.height), pixels).convert("RGB")


def ffmpeg_exe() -> str:
    """Path of the static ffmpeg that the imageio-ffmpeg wheel ships (CodecUnavailable if absent)."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise CodecUnavailable("imageio-ffmpeg is not installed (pip install imageio-ffmpeg)") from exc
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise CodecUnavailable(f"imageio-ffmpeg has no ffmpeg binary ({exc})") from exc


def ffmpeg_has(kind: str, name: str) -> bool:
    """Whether that ffmpeg lists an encoder/decoder (`kind` 'encoders' or 'decoders') called `name`."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", f"-{kind}"], capture_output=True, text=True).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


def run_ffmpeg(args: list[str], data: bytes) -> bytes:
    """Run that ffmpeg with `args`, `data` on stdin; return stdout or raise with ffmpeg's message."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args],
                          input=data, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace').strip()[-500:]}")
    return proc.stdout


class VvcImageCodec(ImageCodecAdapter):
    """VVC intra: libvvenc inside imageio-ffmpeg's ffmpeg, decoded by ffmpeg's native VVC decoder.

    libvvenc only accepts yuv420p10le, so the image is converted in numpy (full-range BT.601,
    4:2:0, 10 bit) and back; the raw .266 bitstream is what is counted.
    """

    def __init__(self, preset: str = "medium") -> None:
        super().__init__(name="vvc", setting="qp",
                         description=f"VVC intra (libvvenc via imageio-ffmpeg, preset {preset}, 4:2:0 10-bit)",
                         values=(47, 42, 37, 32, 27, 22, 17, 12),
                         params={"library": "ffmpeg libvvenc (imageio-ffmpeg)", "preset": preset, "qpa": 0,
                                 "threads": 1, "pix_fmt": "yuv420p10le",
                                 "colour": "full-range BT.601 4:2:0 in numpy (2x2 mean down, bilinear up)",
                                 "decoder": "ffmpeg native vvc",
                                 "container": "4-byte size prefix + raw .266 bitstream"})

    def check(self) -> None:
        ffmpeg_exe()
        if not ffmpeg_has("encoders", "libvvenc"):
            raise CodecUnavailable("imageio-ffmpeg's ffmpeg has no libvvenc encoder")
        if not ffmpeg_has("decoders", "vvc"):
            raise CodecUnavailable("imageio-ffmpeg's ffmpeg has no VVC decoder, so files cannot be checked")

    def encode(self, image: Image.Image, value: float) -> bytes:
        rgb = pad_even(np.asarray(image.convert("RGB")))
        h, w = rgb.shape[:2]
        planes = rgb_to_yuv420(rgb, bit_depth=10)
        raw = b"".join(p.astype("<u2").tobytes() for p in planes)
        stream = run_ffmpeg(["-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s", f"{w}x{h}", "-color_range", "pc",
                           "-i", "pipe:0", "-frames:v", "1", "-c:v", "libvvenc", "-preset", self.params["preset"],
                           "-qp", str(int(value)), "-qpa", str(self.params["qpa"]), "-threads", "1",
                           "-f", "vvc", "pipe:1"], raw)
        # libvvenc needs even sizes: odd images are coded padded, so the true size travels in a
        # 4-byte prefix (counted in the rate like any container header).
        return image.width.to_bytes(2, "big") + image.height.to_bytes(2, "big") + stream

    def decode(self, data: bytes) -> Image.Image:
        w, h = int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big")
        out = run_ffmpeg(["-threads", "1", "-f", "vvc", "-i", "pipe:0", "-frames:v", "1", "-pix_fmt", "yuv420p10le",
                          "-strict", "-1", "-f", "yuv4mpegpipe", "pipe:1"], data[4:])
        (y, cb, cr), _ = read_y4m_frame(out)
        return Image.fromarray(yuv420_to_rgb(y, cb, cr, bit_depth=10)[:h, :w])


def read_y4m_frame(data: bytes) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[int, int]]:
    """First frame of a 4:2:0 Y4M stream (8 or 10 bit) as planes, plus the picture (width, height)."""
    header, _, rest = data.partition(b"\n")
    fields = {t[:1]: t[1:] for t in header.split()[1:]}
    if not header.startswith(b"YUV4MPEG2") or b"W" not in fields or b"H" not in fields:
        raise RuntimeError("not a Y4M stream")
    w, h = int(fields[b"W"]), int(fields[b"H"])
    colour = fields.get(b"C", b"420")
    if not colour.startswith(b"420"):
        raise RuntimeError(f"unexpected Y4M colour format {colour.decode()}")
    dtype = np.dtype("<u2") if b"p" in colour[3:] else np.dtype(np.uint8)
    frame_header, _, payload = rest.partition(b"\n")
    if not frame_header.startswith(b"FRAME"):
        raise RuntimeError("Y4M stream has no frame")
    cw, ch = (w + 1) // 2, (h + 1) // 2
    n, nc = w * h, cw * ch
    a = np.frombuffer(payload, dtype=dtype, count=n + 2 * nc)
    return (a[:n].reshape(h, w), a[n:n + nc].reshape(ch, cw), a[n + nc:].reshape(ch, cw)), (w, h)


#: weights the ours codecs load instead of the bundled default (set by `lcodec bench images --model`)
MODEL_ENV = "LCODEC_BENCH_MODEL"
#: the ours codecs' qualities, e.g. "1-8" or "1,3,5,8" (set by `lcodec bench images --qualities`; default: all levels)
QUALITIES_ENV = "LCODEC_BENCH_QUALITIES"


def parse_qualities(spec: str) -> list[int]:
    """Integer qualities from "1-8", "1,3,5,8" or a mix ("1-3,8"); ValueError for anything else."""
    out: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"qualities must be integers or ranges like 1-8, got '{spec}'")
        a, b = int(lo), int(hi) if sep else int(lo)
        if a > b:
            raise ValueError(f"empty quality range '{part}'")
        out.update(range(a, b + 1))
    return sorted(out)


class OursImageCodec(ImageCodecAdapter):
    """lcodec's own image codec (`codec.ImageCodec.default()`), every integer quality of its model.

    The sweep is the model's own levels, known once the weights load (`check()` or `settings()`).
    `effort` > 0 (``ours-e1`` ...) searches each image's latents before coding: its own curve."""

    def __init__(self, effort: int = 0) -> None:
        model = os.environ.get(MODEL_ENV)
        params = {"library": f"lcodec codec.ImageCodec.{'from_model' if model else 'default'}()", "device": "cpu",
                  "torch_threads": 1}
        weights = f"weights {Path(model).name}" if model else "bundled default model"
        name, description = "ours", f"lcodec ImageCodec ({weights})"
        if effort:
            from lcodec.codec.latent_search import config_for_effort

            params.update(effort=effort, search=vars(config_for_effort(effort)))
            name, description = f"ours-e{effort}", f"{description}, encoder effort {effort} (latent search)"
        super().__init__(name=name, description=description, values=(), params=params)
        self.effort = effort
        self._codec = None

    def check(self) -> None:
        try:
            from lcodec.codec import ImageCodec  # noqa: F401
        except ImportError as exc:
            raise CodecUnavailable(f"codec.ImageCodec is not available yet ({exc})") from exc
        try:
            from lcodec.codec.errors import LcodecError
        except ImportError:  # older codec package without its error module
            LcodecError = OSError  # noqa: N806
        try:
            self._get()  # loads the bundled weights: no model means no codec to measure
        except LcodecError as exc:
            raise CodecUnavailable(f"the default model cannot be loaded ({exc})") from exc

    def _get(self):
        if self._codec is None:
            import torch

            from lcodec.codec import ImageCodec

            torch.set_num_threads(self.params["torch_threads"])
            model = os.environ.get(MODEL_ENV)
            self._codec = ImageCodec.from_model(model) if model else ImageCodec.default()
            self.values = self._codec.levels
            spec = os.environ.get(QUALITIES_ENV)
            if spec:
                wanted = parse_qualities(spec)
                missing = [q for q in wanted if q not in self.values]
                if missing:
                    raise CodecUnavailable(f"the model has no quality {missing[0]} (levels 1-{len(self.values)})")
                self.values = tuple(wanted)
        return self._codec

    def settings(self) -> dict:
        """Settings include the weights hash and the format version written, so cached points never
        outlive the model or the coding arithmetic that made them."""
        codec = self._get()
        loaded = codec.loaded
        return {**super().settings(), "model": loaded.name, "weights_hash": loaded.weights_hash.hex(),
                "format_version": codec.write_version}

    def encode(self, image: Image.Image, value: float) -> bytes:
        return self._get().encode(image, quality=float(value), effort=self.effort)

    def decode(self, data: bytes) -> Image.Image:
        return self._get().decode(data).convert("RGB")


IMAGE_CODECS: dict[str, Callable[[], ImageCodecAdapter]] = {
    "ours": OursImageCodec,
    "ours-e1": lambda: OursImageCodec(1),
    "ours-e2": lambda: OursImageCodec(2),
    "ours-e3": lambda: OursImageCodec(3),
    "jpeg": lambda: JpegCodec("4:2:0"),
    "jpeg444": lambda: JpegCodec("4:4:4"),
    "webp": WebpCodec,
    "avif": AvifCodec,
    "jp2k": Jp2kCodec,
    "heif": HeifCodec,
    "jxl": JxlCodec,
    "vvc": VvcImageCodec,
}


def make_image_codec(name: str) -> ImageCodecAdapter:
    """Build the adapter called `name` (BenchError for an unknown name)."""
    return build_codec(IMAGE_CODECS, name, "image")


def _register_compressai() -> None:
    """Add CompressAI's zoo models (`cai-...`, bench/compressai_codecs.py) to IMAGE_CODECS."""
    from .compressai_codecs import compressai_codecs

    IMAGE_CODECS.update(compressai_codecs())


_register_compressai()
