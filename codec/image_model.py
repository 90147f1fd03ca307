"""The image model: transforms + hyperprior + multi-reference entropy model + quality gains.

``forward`` gives reconstructions and likelihoods for rate-distortion training; ``compress`` and
``decompress`` turn a padded image tensor into two range-coded streams (z, then y) and back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from lcodec.entropy_models.cdf_tables import PRECISION, HyperpriorTables
from lcodec.entropy_models.factorized import FactorizedPrior
from lcodec.entropy_models.fixed_point import CachedExactEngine, ExactSequential, to_fixed, to_real
from lcodec.entropy_models.multi_reference import ExactContext, MultiReferenceEntropyModel
from lcodec.entropy_models.range_coder import RangeDecoder, RangeEncoder, StreamError

from .quality import DEFAULT_LEVELS, LAMBDAS, GainUnit
from .transforms import (
    HYPER_STRIDE,
    AnalysisTransform,
    HyperAnalysis,
    HyperSynthesis,
    SynthesisTransform,
)


class ExactEngine:
    """h_s and the context networks in exact fixed point, for one device and one set of weights."""

    def __init__(self, h_s: nn.Module, context: MultiReferenceEntropyModel, device: torch.device) -> None:
        self.context = ExactContext(context, device)
        self.h_s = ExactSequential(h_s, self.context.tables, device)


#: Most residual blocks per g_s stage: each widens g_s's reach by 14 pixels, and it must stay inside
#: image_codec.TRANSFORM_MARGIN (64) for tiled synthesis to equal untiled (tests/test_tiling.py).
MAX_GS_BLOCKS = 2


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; stored in every weights file."""

    n: int = 96  # transform width
    m: int = 160  # latent channels
    nz: int = 96  # hyper-latent channels
    hyper: int = 128  # hyper feature channels fed to the context model
    slices: int = 5
    hidden: int = 128  # width of the entropy-parameter networks
    levels: int = DEFAULT_LEVELS  # trained quality levels: the first `levels` rungs of the lambda ladder
    gs_blocks: int = 0  # residual bottleneck blocks after each inverse GDN of g_s (0: the plain transform)

    #: fields for which 0 is a valid value (it means "none")
    _MAY_BE_ZERO = ("gs_blocks",)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f: int(d[f]) for f in cls.__dataclass_fields__ if f in d}
        return cls(**known)

    def updated(self, text: str) -> "ModelConfig":
        """This config with fields changed by a spec like "n=160" or "n=128,hidden=160" (ValueError if bad)."""
        changes = {}
        for item in filter(None, (t.strip() for t in text.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in self.__dataclass_fields__:
                raise ValueError(f"expected KEY=VALUE with KEY one of {', '.join(self.__dataclass_fields__)}, "
                                 f"got {item!r}")
            try:
                changes[key] = int(value)
            except ValueError:
                raise ValueError(f"{key} must be an integer, got {value.strip()!r}") from None
            if changes[key] < 0 or (changes[key] == 0 and key not in self._MAY_BE_ZERO):
                least = "at least 0" if key in self._MAY_BE_ZERO else "positive"
                raise ValueError(f"{key} must be {least}, got {changes[key]}")
        new = replace(self, **changes)
        if new.gs_blocks > MAX_GS_BLOCKS:
            raise ValueError(f"gs_blocks must be at most {MAX_GS_BLOCKS}: more would let g_s reach past the "
                             "margin of the tiles it decodes in")
        if not 2 <= new.levels <= len(LAMBDAS):
            raise ValueError(f"levels must be between 2 and {len(LAMBDAS)} (the lambda ladder), got {new.levels}")
        if new.m % new.slices:
            raise ValueError(f"m={new.m} latent channels do not split into {new.slices} equal slices")
        return new


#: Named architectures (`lcodec train --arch NAME`): "default" is the bundled model's (what a new run
#: trains unless told otherwise), "small" the narrower 8-level one of the first runs, for quick experiments.
ARCHITECTURES: dict[str, ModelConfig] = {
    "default": ModelConfig(n=160, levels=12),
    "small": ModelConfig(n=96, levels=8),
}


def architecture(spec: str, base: ModelConfig) -> ModelConfig:
    """The architecture a spec names: "NAME", "NAME,KEY=N,..." or "KEY=N,..." (changes to `base`);
    ValueError if it names no architecture or field."""
    name, _, rest = spec.partition(",")
    if "=" not in name:
        if name.strip() not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {name.strip()!r} (named: {', '.join(ARCHITECTURES)}; "
                             f"or KEY=N changes such as n=160)")
        return ARCHITECTURES[name.strip()].updated(rest)
    return base.updated(spec)


class ImageModel(CachedExactEngine, HyperpriorTables, nn.Module):
    """Variable-rate learned image codec network."""

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        self.g_a = AnalysisTransform(config.n, config.m)
        self.g_s = SynthesisTransform(config.n, config.m, config.gs_blocks)
        self.h_a = HyperAnalysis(config.m, config.nz)
        self.h_s = HyperSynthesis(config.nz, config.hyper)
        self.z_prior = FactorizedPrior(config.nz)
        self.context = MultiReferenceEntropyModel(config.m, config.hyper, config.slices, config.hidden)
        self.gain = GainUnit(config.m, config.levels)

    # ---- training ------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, q: torch.Tensor, table_scales: bool = True) -> dict[str, torch.Tensor]:
        """x: [B, 3, H, W] in [0, 1] with H, W multiples of 64; q: [B] qualities.

        In eval mode rates use the coder's table scales unless `table_scales` is False.
        """
        y = self.g_a(x) * self.gain.gain(q)
        y_hat, y_lik, z_lik = self.entropy_pass(y, table_scales=table_scales)
        x_hat = self.g_s(y_hat * self.gain.inverse_gain(q))
        return {"x_hat": x_hat, "y_likelihoods": y_lik, "z_likelihoods": z_lik}

    def entropy_pass(self, y: torch.Tensor, training: bool | None = None,
                     table_scales: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(y_hat, y likelihoods, z likelihoods) of a gained latent through the hyperprior and the
        contexts: noisy rates when training (default: the module's mode), rounded values otherwise."""
        z_hat, z_lik = self.z_prior(self.h_a(y), training=training)
        y_hat, y_lik = self.context(y, self.h_s(z_hat), training=training, table_scales=table_scales)
        return y_hat, y_lik, z_lik

    # ---- coding (build_tables / load_tables: HyperpriorTables) ----------------------------------

    def min_z_bits(self, padded_hw: tuple[int, int]) -> float:
        """Fewest bits any z stream of a padded image this size can take (the most likely symbol in
        every position); a stream far shorter than this cannot be genuine, whatever its CRC says."""
        tables = self.z_prior.tables
        top = tables.freqs.max(axis=1).astype(np.float64) / float(1 << PRECISION)
        per_block = float(-np.log2(top).sum())
        h, w = padded_hw
        return per_block * (h // HYPER_STRIDE) * (w // HYPER_STRIDE)

    def _new_exact_engine(self, device: torch.device) -> ExactEngine:
        return ExactEngine(self.h_s.net, self.context, device)

    @torch.no_grad()
    def compress_latent(self, y: torch.Tensor, exact: bool = True, joint: bool = False,
                        z: torch.Tensor | None = None) -> tuple[list[bytes], torch.Tensor]:
        """Code a gained latent [1, M, h, w] (h, w multiples of 4); return ([z, y streams], y_hat).

        `exact` (the default, format versions 3 to 5) computes the entropy parameters in fixed point,
        so any device decodes the streams; False is the float path of format versions 1 and 2.
        `joint` (format versions 4 and 5) codes z and then y into one stream: one coder flush less.
        `z` is the hyper-latent to code (default h_a(y); the encoder's latent search passes its own)."""
        z = self.h_a(y) if z is None else z
        enc_z = RangeEncoder()
        z_hat = self.z_prior.compress(z, enc_z).to(y.device)
        enc_y = enc_z if joint else RangeEncoder()
        if exact:
            engine = self.exact_engine(y.device)
            hyper = engine.h_s(to_fixed(z_hat))
            y_hat = to_real(self.context.compress(y, hyper, enc_y, engine.context))
        else:
            y_hat = self.context.compress(y, self.h_s(z_hat), enc_y)
        if joint:
            return [enc_z.finish()], y_hat
        return [enc_z.finish(), enc_y.finish()], y_hat

    @torch.no_grad()
    def decompress_latent(self, streams: list[bytes], padded_hw: tuple[int, int],
                          device: torch.device | str = "cpu", exact: bool = True) -> torch.Tensor:
        """Decode the gained latent y_hat of a padded image of size padded_hw from its z and y
        streams, or from the one stream that holds both (format versions 4 and 5)."""
        h, w = padded_hw
        if len(streams) not in (1, 2):
            raise StreamError("expected a z stream and a y stream, or one stream holding both")
        dec_z = RangeDecoder(streams[0])
        z_hat = self.z_prior.decompress(dec_z, (1, self.config.nz, h // HYPER_STRIDE, w // HYPER_STRIDE))
        if len(streams) == 1:
            dec_y = dec_z
        else:
            if not dec_z.exhausted():
                raise StreamError("z stream has trailing data")
            dec_y = RangeDecoder(streams[1])
        if exact:
            engine = self.exact_engine(device)
            hyper = engine.h_s(to_fixed(z_hat.to(device)))
            y_hat = to_real(self.context.decompress(hyper, dec_y, engine.context))
        else:
            y_hat = self.context.decompress(self.h_s(z_hat.to(device)), dec_y)
        if not dec_y.exhausted():
            raise StreamError("y stream has trailing data")
        return y_hat

    @torch.no_grad()
    def compress(self, x: torch.Tensor, q: float) -> tuple[list[bytes], torch.Tensor]:
        """Code a padded image [1, 3, H, W] into a z and a y stream, no container (files, version 4 with
        z and y in one stream, are `ImageCodec`'s); return ([z stream, y stream], y_hat)."""
        if x.shape[0] != 1 or x.shape[-1] % HYPER_STRIDE or x.shape[-2] % HYPER_STRIDE:
            raise ValueError("compress expects one image padded to a multiple of 64")
        qt = torch.tensor([q], dtype=torch.float32, device=x.device)
        return self.compress_latent(self.g_a(x) * self.gain.gain(qt))

    @torch.no_grad()
    def decompress(self, streams: list[bytes], q: float, padded_hw: tuple[int, int],
                   device: torch.device | str = "cpu") -> torch.Tensor:
        """Decode the streams of `compress` of a padded image; returns [1, 3, H, W] (unclamped)."""
        qt = torch.tensor([q], dtype=torch.float32, device=device)
        y_hat = self.decompress_latent(streams, padded_hw, device)
        return self.g_s(y_hat * self.gain.inverse_gain(qt))

    @torch.no_grad()
    def estimate_bits(self, x: torch.Tensor, q: float, table_scales: bool = True) -> float:
        """Model's own rate estimate (-log2 likelihoods of the rounded latents), in bits.

        With `table_scales` (default) the y likelihoods use the scales the coder really uses; without,
        the continuous predicted scales (the training-time rate term).
        """
        was = self.training
        self.eval()
        out = self.forward(x, torch.tensor([q], dtype=torch.float32, device=x.device), table_scales)
        self.train(was)
        return float(-(torch.log2(out["y_likelihoods"]).sum() + torch.log2(out["z_likelihoods"]).sum()))
