"""CompressAI's pretrained image models as reference codecs (``cai-<architecture>`` in `bench images`).

Users of learned codecs compare against these first. Each point is a real file: CompressAI's own
`compress` (its entropy coders) wrapped in a small container of ours (quality, image size, the latent
shape and each string with its length), so the rate counts every byte a decoder needs. The weights come
from CompressAI's model zoo: a machine with internet downloads them on first use (into torch's hub
cache); without them the codec is reported unavailable in one line. lcodec's tests run the same code
path on randomly initialised zoo models (`pretrained=False`).
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from lcodec.codec.transforms import from_pixels, to_pixels

from .errors import CodecUnavailable
from .image_codecs import ImageCodecAdapter

MAGIC = b"CAI1"
#: the zoo's image architectures this bench offers (the variable-rate "-vbr" models take no quality index)
ARCHITECTURES = ("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor",
                 "cheng2020-attn")
PAD = 64  # the zoo models need sides divisible by 2^6


def _zoo():
    try:
        from compressai.zoo import image as zoo_image
    except ImportError as exc:  # compressai is in the bench extra: the codec itself never imports it
        raise CodecUnavailable(f"compressai is not installed ({exc}); pip install 'lcodec[bench]'") from exc
    return zoo_image


class CompressAICodec(ImageCodecAdapter):
    """One CompressAI zoo architecture, swept over the qualities the zoo has MSE weights for."""

    def __init__(self, arch: str, pretrained: bool = True) -> None:
        zoo = _zoo()
        qualities = sorted(zoo.model_urls[arch]["mse"]) if pretrained else sorted(zoo.cfgs[arch])
        super().__init__(name=f"cai-{arch}", description=f"CompressAI {arch} (zoo, MSE-trained"
                         f"{'' if pretrained else ', random weights'}), its own range coder",
                         values=tuple(qualities),
                         params={"library": "compressai", "architecture": arch, "metric": "mse",
                                 "pretrained": pretrained, "torch_threads": 1})
        self.arch = arch
        self.pretrained = pretrained
        self._models: dict[int, object] = {}

    def _model(self, quality: int):
        if quality not in self._models:
            import torch

            torch.set_num_threads(self.params["torch_threads"])
            zoo = _zoo()
            try:
                model = zoo._load_model(self.arch, "mse", quality, pretrained=self.pretrained, progress=False)
            except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError: no internet, no weights
                raise CodecUnavailable(f"CompressAI zoo weights for {self.arch} quality {quality} are not available "
                                       f"here ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); a machine "
                                       f"with internet downloads them on first use") from exc
            model.eval()
            if not self.pretrained:
                model.update(force=True)  # random weights come without the coder's tables
            self._models[quality] = model
        return self._models[quality]

    def check(self) -> None:
        self._model(int(self.values[0]))

    def encode(self, image: Image.Image, value: float) -> bytes:
        import torch
        import torch.nn.functional as F

        q = int(value)
        rgb = np.asarray(image.convert("RGB"))
        h, w = rgb.shape[:2]
        x = from_pixels(rgb).unsqueeze(0)
        x = F.pad(x, (0, (-w) % PAD, 0, (-h) % PAD), mode="replicate")
        with torch.no_grad():
            out = self._model(q).compress(x)
        strings = [s[0] for s in out["strings"]]
        shape = tuple(int(v) for v in out["shape"])
        buf = io.BytesIO()
        buf.write(MAGIC + struct.pack("<BIIHHB", q, w, h, shape[0], shape[1], len(strings)))
        for s in strings:
            buf.write(struct.pack("<I", len(s)) + s)
        return buf.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        import torch

        if data[:4] != MAGIC:
            raise ValueError("not a cai bench file")
        q, w, h, s0, s1, n = struct.unpack_from("<BIIHHB", data, 4)
        pos = 4 + struct.calcsize("<BIIHHB")
        strings = []
        for _ in range(n):
            (length,) = struct.unpack_from("<I", data, pos)
            strings.append([data[pos + 4: pos + 4 + length]])
            pos += 4 + length
        with torch.no_grad():
            x_hat = self._model(q).decompress(strings, [s0, s1])["x_hat"]
        return Image.fromarray(to_pixels(x_hat[0, :, :h, :w]))


def compressai_codecs() -> dict[str, object]:
    """Name -> factory of every zoo architecture offered here (registered in `IMAGE_CODECS`)."""
    return {f"cai-{a}": (lambda a=a: CompressAICodec(a)) for a in ARCHITECTURES}
