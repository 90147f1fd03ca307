"""Analysis / synthesis transforms (g_a, g_s) and hyper transforms (h_a, h_s).

The main transforms follow the four-stage strided-convolution design of Ballé et al. (2018) with
GDN nonlinearities, which give the most rate-distortion per FLOP for small models. Widths are kept
small so that a 768x512 image decodes in well under a second on two CPU cores.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lcodec.entropy_models.fixed_point import CachedExactEngine

#: Total downsampling factor of g_a followed by h_a: inputs are padded to a multiple of this.
LATENT_STRIDE = 16
HYPER_STRIDE = 64


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé et al. 2016), or its inverse.

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2). Parameters are stored re-parameterised
    (squared, shifted) so that they stay positive under gradient descent.

    This is `compressai.layers.GDN` with its `NonNegativeParametrizer` at reparam_offset 2**-9 (a pedestal
    of 2**-18; CompressAI's default offset 2**-18 gives 2**-36), bit for bit under the same parameter names
    (tests/test_compressai_equivalence.py); only the gradient at the bounds differs (clamp passes none
    below them, CompressAI's LowerBound passes the part that pushes back up). lcodec does not import it:
    importing compressai nearly doubles the CPU time of a `lcodec decode` (docs/design.md, "What comes
    from compressai").
    """

    _PEDESTAL = 2.0**-18

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        p = self._PEDESTAL
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + p))
        self.gamma = nn.Parameter(torch.sqrt(0.1 * torch.eye(channels) + p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self._PEDESTAL
        beta = torch.clamp(self.beta, min=(1e-6 + p) ** 0.5) ** 2 - p
        gamma = torch.clamp(self.gamma, min=p**0.5) ** 2 - p
        c = gamma.shape[0]
        norm = F.conv2d(x * x, gamma.view(c, c, 1, 1), beta)
        norm = torch.sqrt(norm) if self.inverse else torch.rsqrt(norm)
        return x * norm


def _down(cin: int, cout: int, k: int = 5) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=2, padding=k // 2)


def _up(cin: int, cout: int, k: int = 5) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


class AnalysisTransform(CachedExactEngine, nn.Module):
    """g_a: RGB in [0, 1] at full resolution -> latent y at 1/16 resolution with M channels.

    Pixels are centred on 0 (and g_s adds the 0.5 back): on CPU-length training runs this alone
    reaches a given PSNR several times sooner than uncentred inputs. `exact_engine(device)`: the same
    transform in fixed point (`codec.exact_analysis`), converted once per device and weights.
    """

    def __init__(self, n: int, m: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _down(3, n), GDN(n),
            _down(n, n), GDN(n),
            _down(n, n), GDN(n),
            _down(n, m),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x - 0.5)

    def _new_exact_engine(self, device: torch.device):
        from .exact_analysis import ExactAnalysis  # built on this module's layers

        return ExactAnalysis(self, device)


class ResidualBottleneck(nn.Module):
    """x + conv1x1(act(conv3x3(act(conv1x1(x))))) at half the width.

    Adds non-linear capacity to g_s between its upsampling stages at a fraction of a full 3x3
    block's cost. The last convolution starts at zero, so a block added to trained weights starts
    as the identity and the model reconstructs exactly as before until training moves it.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = max(1, channels // 2)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1), nn.GELU(),
            nn.Conv2d(mid, mid, 3, padding=1), nn.GELU(),
            nn.Conv2d(mid, channels, 1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SynthesisTransform(nn.Module):
    """g_s: latent y_hat at 1/16 resolution -> RGB at full resolution (not clamped).

    `blocks` residual bottleneck blocks follow each of the three inverse GDNs (at 1/8, 1/4 and
    1/2 resolution); 0 is the plain four-stage transform. They live outside `net` so that the plain
    transform's parameter names, and weights trained without blocks, stay valid.
    """

    def __init__(self, n: int, m: int, blocks: int = 0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _up(m, n), GDN(n, inverse=True),
            _up(n, n), GDN(n, inverse=True),
            _up(n, n), GDN(n, inverse=True),
            _up(n, 3),
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(*(ResidualBottleneck(n) for _ in range(blocks))) for _ in range(3 if blocks else 0))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = y
        stage = 0
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, GDN) and stage < len(self.blocks):
                x = self.blocks[stage](x)
                stage += 1
        return x + 0.5


def from_pixels(rgb: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """H x W x 3 uint8 pixels as the [3, H, W] float tensor in [0, 1] that g_a takes, on `device`.

    The uint8 array moves to the device before conversion (a quarter of the bytes), and every encoder,
    trainer and bench converts the same way, so their inputs are bit-identical. Strided or read-only
    arrays (flipped crops, `np.asarray` of a Pillow image) are copied first.
    """
    rgb = np.require(rgb, requirements=("C", "W"))
    return torch.from_numpy(rgb).to(device).permute(2, 0, 1).float().div(255)


def to_pixels(x_hat: torch.Tensor) -> np.ndarray:
    """A g_s output [3, H, W] as the H x W x 3 uint8 pixels a decoder writes (clamped, rounded)."""
    return x_hat.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class HyperAnalysis(nn.Module):
    """h_a: y -> z at 1/4 of the latent resolution."""

    def __init__(self, m: int, nz: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(m, nz, 3, padding=1), nn.GELU(),
            _down(nz, nz), nn.GELU(),
            _down(nz, nz),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class HyperSynthesis(nn.Module):
    """h_s: z_hat -> hyper features at the latent resolution (input to every entropy parameter net)."""

    def __init__(self, nz: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _up(nz, nz), nn.GELU(),
            _up(nz, out), nn.GELU(),
            nn.Conv2d(out, out, 3, padding=1),
        )

    def forward(self, z_hat: torch.Tensor) -> torch.Tensor:
        return self.net(z_hat)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad an NCHW tensor on the bottom/right to a multiple of `multiple`."""
    h, w = x.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    # replicate padding needs the pad to be smaller than the input in torch for some modes; replicate is fine
    return F.pad(x, (0, pw, 0, ph), mode="replicate")
