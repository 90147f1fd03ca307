"""ImageCodec: the image codec users call, from Pillow images (or arrays) to lcodec files and back."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from entropy_models.range_coder import StreamError

from .container import ImageHeader, pack_image, read_header, unpack_image
from .errors import FormatError, InputError, TargetError
from .image_io import PreparedImage, decode_alpha, encode_alpha, finish, prepare
from .quality import QUALITY_MAX, QUALITY_MIN, check_quality
from .registry import LoadedModel, find_model_for, get_model
from .transforms import HYPER_STRIDE, pad_to_multiple

#: Bisection stops when the quality interval is this narrow.
TARGET_TOLERANCE = 0.01


@dataclass
class Analysis:
    """g_a output of one image, reused across the encodes of a rate/quality search."""

    prepared: PreparedImage
    x: torch.Tensor  # padded [1, 3, H', W'] in [0, 1]
    y: torch.Tensor  # latent before gain


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


class ImageCodec:
    """Encode and decode images with one learned model (any quality in [1, 8])."""

    def __init__(self, loaded: LoadedModel, device: str | torch.device = "cpu") -> None:
        self.loaded = loaded
        self.device = torch.device(device)
        self.model = loaded.model.to(self.device)

    @classmethod
    def default(cls, device: str | torch.device = "cpu") -> "ImageCodec":
        """The bundled default model."""
        return cls(get_model(None), device)

    @classmethod
    def from_model(cls, spec: str | Path, device: str | torch.device = "cpu") -> "ImageCodec":
        """A bundled model by name or a weights file (from ``lcodec export``) by path."""
        return cls(get_model(spec), device)

    # ---- encoding ------------------------------------------------------------------------------

    def analyse(self, image: Image.Image | np.ndarray | PreparedImage) -> Analysis:
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        prepared = image if isinstance(image, PreparedImage) else prepare(image)
        h, w = prepared.rgb.shape[:2]
        if h < 1 or w < 1:
            raise InputError("image has no pixels")
        x = torch.from_numpy(prepared.rgb).to(self.device).permute(2, 0, 1).float().div(255).unsqueeze(0)
        x = pad_to_multiple(x, HYPER_STRIDE)
        with torch.no_grad():
            y = self.model.g_a(x)
        return Analysis(prepared, x, y)

    def _encode_analysis(self, a: Analysis, quality: float) -> tuple[bytes, torch.Tensor]:
        q = torch.tensor([quality], dtype=torch.float32, device=self.device)
        with torch.no_grad():
            streams, y_hat = self.model.compress_latent(a.y * self.model.gain.gain(q))
        p = a.prepared
        if p.alpha is not None:
            streams.append(encode_alpha(p.alpha))
        h, w = p.rgb.shape[:2]
        header = ImageHeader(self.loaded.name, self.loaded.weights_hash, quality, h, w, p.mode)
        return pack_image(header, streams), y_hat

    def encode(self, image: Image.Image | np.ndarray | PreparedImage, quality: float = 4.0) -> bytes:
        """Encode at a quality in [1, 8] (fractions interpolate between the trained levels)."""
        quality = self._quantized_quality(check_quality(quality))
        return self._encode_analysis(self.analyse(image), quality)[0]

    @staticmethod
    def _quantized_quality(q: float) -> float:
        # the header stores quality in 1/4096 steps: code with exactly the value the decoder will read
        return round(q * 4096) / 4096

    def encode_to_target(self, image: Image.Image | np.ndarray | PreparedImage, bpp: float | None = None,
                         psnr: float | None = None) -> tuple[bytes, float]:
        """Highest quality whose file fits `bpp`, or lowest quality whose PSNR reaches `psnr`."""
        if (bpp is None) == (psnr is None):
            raise ValueError("give exactly one of bpp or psnr")
        a = self.analyse(image)
        h, w = a.prepared.rgb.shape[:2]

        def measure(q: float) -> tuple[bytes, float]:
            blob, y_hat = self._encode_analysis(a, q)
            if bpp is not None:
                return blob, 8 * len(blob) / (h * w)
            rgb = self._synthesise(y_hat, q, h, w)
            return blob, _psnr(rgb, a.prepared.rgb)

        def ok(value: float) -> bool:
            return value <= bpp if bpp is not None else value >= psnr

        lo, hi = QUALITY_MIN, QUALITY_MAX
        blob_hi, v_hi = measure(hi)
        if ok(v_hi) and bpp is not None:
            return blob_hi, hi
        blob_lo, v_lo = measure(lo)
        if psnr is not None and ok(v_lo):
            return blob_lo, lo
        if bpp is not None and not ok(v_lo):
            raise TargetError(f"cannot reach {bpp:g} bpp: the lowest quality gives {v_lo:.3f} bpp")
        if psnr is not None and not ok(v_hi):
            raise TargetError(f"cannot reach {psnr:g} dB: the highest quality gives {v_hi:.2f} dB")
        best = (blob_lo, lo) if bpp is not None else (blob_hi, hi)
        while hi - lo > TARGET_TOLERANCE:
            mid = self._quantized_quality((lo + hi) / 2)
            blob, v = measure(mid)
            if ok(v):
                best = (blob, mid)
                if bpp is not None:
                    lo = mid
                else:
                    hi = mid
            elif bpp is not None:
                hi = mid
            else:
                lo = mid
        return best

    # ---- decoding ------------------------------------------------------------------------------

    def _synthesise(self, y_hat: torch.Tensor, quality: float, h: int, w: int) -> np.ndarray:
        q = torch.tensor([quality], dtype=torch.float32, device=self.device)
        with torch.no_grad():
            x = self.model.g_s(y_hat * self.model.gain.inverse_gain(q))
        x = x[0, :, :h, :w].clamp(0, 1).mul(255).round().to(torch.uint8)
        return x.permute(1, 2, 0).cpu().numpy()

    @classmethod
    def for_stream(cls, data: bytes, extra_models: list[str | Path] | None = None,
                   device: str | torch.device = "cpu") -> "ImageCodec":
        """A codec holding the model a stream was made with (found by its weights hash)."""
        header = read_header(data)[0]
        return cls(find_model_for(header.model, header.weights_hash, extra_models), device)

    def decode(self, data: bytes, extra_models: list[str | Path] | None = None) -> Image.Image:
        """Decode an lcodec image file to a Pillow image in the original mode and size."""
        header, streams = unpack_image(data)
        codec = self
        if header.weights_hash != self.loaded.weights_hash:
            codec = ImageCodec(find_model_for(header.model, header.weights_hash, extra_models), self.device)
        return codec._decode_checked(header, streams)

    def _decode_checked(self, header: ImageHeader, streams: list[bytes]) -> Image.Image:
        has_alpha = header.mode in ("RGBA", "LA")
        if len(streams) != (3 if has_alpha else 2):
            raise FormatError(f"corrupt file ({len(streams)} streams for a {header.mode} image)")
        h, w = header.height, header.width
        ph, pw = h + (-h) % HYPER_STRIDE, w + (-w) % HYPER_STRIDE
        try:
            y_hat = self.model.decompress_latent(streams[:2], (ph, pw), self.device)
        except StreamError as exc:
            raise FormatError(f"corrupt stream: {exc}") from None
        rgb = self._synthesise(y_hat, header.quality, h, w)
        alpha = decode_alpha(streams[2], h, w) if has_alpha else None
        return finish(rgb, header.mode, alpha)

    @staticmethod
    def info(data: bytes) -> dict:
        """Header fields of a file (validated, CRC checked) plus its size and bpp."""
        header, _ = unpack_image(data)
        return header.to_dict(total_bytes=len(data))
