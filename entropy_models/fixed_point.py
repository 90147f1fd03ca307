"""Exact integer arithmetic for the networks that produce entropy-coding parameters.

A learned codec only decodes if the decoder computes the *same* means and scale indexes as the
encoder did. In float arithmetic that holds only on the same device with the same kernels: a GPU, a
different CPU, another thread count or library version sums in another order and moves values by an
ulp, which is enough to flip a rounding or a scale index and desynchronise the range decoder.

Here those networks run on fixed-point integers instead:

* activations are integers A = round(a * 2^FRAC), weights W = round(w * 2^WFRAC), biases at
  2^(FRAC + WFRAC); they are held in float64 tensors, where every product and every partial sum stays
  an integer below 2^53 (checked per layer when the weights are converted), so each convolution or
  matrix product is exact whatever order a device sums in;
* every rescale is a division by a power of two followed by floor, and the one true division (the
  attention normaliser) is an int64 floor division: both exact on every device; GDN (in the exact
  analysis transform a video decoder runs) takes a square root and a division of exact float64
  integers, which IEEE 754 rounds correctly, hence identically, on every conforming device;
* nonlinearities (GELU, elu + 1, tanh, softplus + scale-table lookup) are lookup tables indexed by the
  integer input, computed once on the host in float64 and checked against a fixed SHA-256, so a
  platform whose libm rounds differently fails loudly instead of decoding garbage.

Only multiply-adds of integers, power-of-two shifts, floor, clamps, int64 division, table lookups
and GDN's correctly rounded square root and division remain, so encoder and decoder agree bit for bit
on any device, with any number of threads.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Fractional bits of activations (values on a 1/1024 grid).
FRAC = 10
#: Fractional bits of weights.
WFRAC = 14
ONE = 1 << FRAC
#: Activations are clamped to +-ACT_MAX (real +-4096) after every layer.
ACT_MAX = float(1 << (FRAC + 12))
#: Attention inputs are clamped to +-ATT_MAX (real +-64) before the key/value summary.
ATT_MAX = float(1 << (FRAC + 6))
#: Exactness bound of float64 integer arithmetic.
EXACT = float(1 << 53)
#: Nonlinearity tables cover inputs in [-LUT_RANGE, LUT_RANGE] (real); outside they are asymptotic.
LUT_RANGE = 16
_LUT_N = LUT_RANGE * ONE
#: SHA-256 of the nonlinearity tables for FRAC = 10, LUT_RANGE = 16, SCALE_MIN = 0.11 (see
#: `_function_tables`); a platform computing other values refuses to run the exact path.
PINNED_SCALE_MIN = 0.11
LUT_SHA256 = "d65c7b1e97e9dab2ac829f753b345e3d31b70b1042e76096b7977fe692ab8341"


def weights_version(module: nn.Module) -> tuple[int, ...]:
    """Changes whenever a parameter of `module` is modified in place (optimizer step, load_state_dict):
    the key under which converted fixed-point weights are cached."""
    return tuple(p._version for p in module.parameters())


class CachedExactEngine:
    """For the models that code through exact fixed-point networks (the image model, the P-frame model):
    `exact_engine(device)` converts their weights once per device with `_new_exact_engine` and reuses
    the result until another device asks or the weights change (`weights_version`). A mixin beside
    nn.Module."""

    def _new_exact_engine(self, device: torch.device):
        raise NotImplementedError

    def exact_engine(self, device: torch.device | str):
        """The fixed-point parameter networks for `device` (rebuilt when the weights change)."""
        device = torch.device(device)
        key = (str(device), weights_version(self))
        cached = getattr(self, "_exact_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, self._new_exact_engine(device))
            self._exact_cache = cached
        return cached[1]


def to_fixed(x: torch.Tensor) -> torch.Tensor:
    """Real tensor -> fixed-point integers (float64), clamped to the activation range."""
    return torch.round(x.double() * ONE).clamp_(-ACT_MAX, ACT_MAX)


def to_real(x: torch.Tensor) -> torch.Tensor:
    """Fixed-point integers -> float32 values (exact while |x| < 2^24)."""
    return (x / ONE).float()


def int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for integer-valued float64 matrices whose products and sums stay below 2^53: exact, so
    any summation order (any BLAS, any device, any thread split) gives the same integers."""
    return a @ b


def _shift_round(x: torch.Tensor, bits: int) -> torch.Tensor:
    """round(x / 2^bits), halves up: exact for integer x below 2^53."""
    return torch.floor(x * (0.5**bits) + 0.5)


# ---- lookup tables ---------------------------------------------------------------------------------

def _table(fn) -> np.ndarray:
    xs = np.arange(-_LUT_N, _LUT_N + 1, dtype=np.float64) / ONE
    return np.array([math.floor(fn(float(v)) * ONE + 0.5) for v in xs], dtype=np.float64)


def _gelu(v: float) -> float:
    return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))


def _phi(v: float) -> float:  # elu(v) + 1
    return v + 1.0 if v >= 0 else math.exp(v)


def _half_tanh(v: float) -> float:
    return 0.5 * math.tanh(v)


def _softplus(v: float) -> float:
    return v + math.log1p(math.exp(-v)) if v > 0 else math.log1p(math.exp(v))


@lru_cache(maxsize=None)
def _function_tables(scale_min: float) -> dict[str, np.ndarray]:
    """The nonlinearities tabulated on the host in float64 (scales: SCALE_MIN + softplus in float32),
    checked against the pinned digest."""
    xs = np.arange(-_LUT_N, _LUT_N + 1, dtype=np.float64) / ONE
    scales = np.array([scale_min + _softplus(float(v)) for v in xs], dtype=np.float64).astype(np.float32)
    tables = {"gelu": _table(_gelu), "phi": _table(_phi), "half_tanh": _table(_half_tanh), "scales": scales}
    if scale_min == PINNED_SCALE_MIN and tables_digest(tables) != LUT_SHA256:
        raise RuntimeError("this platform's math library tabulates the fixed-point nonlinearities differently "
                           "from the reference; exact decoding cannot be guaranteed here (please report)")
    return tables


def tables_digest(tables: dict[str, np.ndarray]) -> str:
    """SHA-256 over lookup tables (integers as int64, scales as float32 bits)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        t = tables[name]
        h.update(name.encode())
        h.update(t.astype("<f4").tobytes() if t.dtype == np.float32 else t.astype("<i8").tobytes())
    return h.hexdigest()


@lru_cache(maxsize=None)
def _host_tables(scale_table: tuple[float, ...], scale_min: float) -> dict[str, np.ndarray]:
    """All lookup tables for one scale table: the scale index is the first table scale >= the
    (float32) predicted scale, as in the float path."""
    f = _function_tables(scale_min)
    bounds = np.asarray(scale_table[:-1], dtype=np.float32)
    index = np.searchsorted(bounds, f["scales"], side="left").astype(np.float64)
    return {"gelu": f["gelu"], "phi": f["phi"], "half_tanh": f["half_tanh"], "scale_index": index}


class Tables:
    """The lookup tables on one device."""

    def __init__(self, scale_table: torch.Tensor, scale_min: float, device: torch.device) -> None:
        key = tuple(float(s) for s in scale_table.detach().float().cpu().tolist())
        host = _host_tables(key, float(scale_min))
        self.t = {k: torch.from_numpy(v).to(device) for k, v in host.items()}
        self.last_index = float(len(key) - 1)

    def _lookup(self, name: str, x: torch.Tensor) -> torch.Tensor:
        i = (x.clamp(-_LUT_N, _LUT_N) + _LUT_N).long()
        return self.t[name][i]

    def gelu(self, x: torch.Tensor) -> torch.Tensor:
        y = self._lookup("gelu", x)
        return torch.where(x > _LUT_N, x, torch.where(x < -_LUT_N, torch.zeros_like(x), y))

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        """elu(x) + 1 (the positive feature map of linear attention)."""
        return torch.where(x >= 0, x + ONE, self._lookup("phi", x))

    def half_tanh(self, x: torch.Tensor) -> torch.Tensor:
        return self._lookup("half_tanh", x)

    def scale_index(self, raw: torch.Tensor) -> torch.Tensor:
        """Scale-table index of SCALE_MIN + softplus(raw) (int64)."""
        idx = self._lookup("scale_index", raw)
        return torch.where(raw > _LUT_N, torch.full_like(idx, self.last_index), idx).long()


# ---- layers ----------------------------------------------------------------------------------------

class ExactConv:
    """A Conv2d or ConvTranspose2d on fixed-point integers (exact on any device)."""

    #: Output positions per matrix product (bounds the unfolded columns' memory).
    CHUNK = 8192

    def __init__(self, layer: nn.Conv2d | nn.ConvTranspose2d, device: torch.device) -> None:
        w = layer.weight.detach().double().cpu()
        self.transposed = isinstance(layer, nn.ConvTranspose2d)
        if layer.bias is not None:
            b = layer.bias.detach().double().cpu()
        else:
            b = torch.zeros(w.shape[1 if self.transposed else 0], dtype=torch.float64)
        if self.transposed:
            # a stride-s transposed convolution is a convolution of the zero-interleaved input with the
            # flipped kernel, in/out channels swapped
            w = w.transpose(0, 1).flip(2, 3)
            k = w.shape[-1]
            self.up = layer.stride[0]
            p = layer.padding[0]
            self.pad = (k - 1 - p, k - 1 - p + layer.output_padding[0])
            self.stride = 1
        else:
            if layer.dilation != (1, 1) or layer.groups != 1 or layer.stride[0] != layer.stride[1]:
                raise ValueError("exact convolution supports square strides, no dilation, no groups")
            self.up = 1
            self.pad = (layer.padding[0], layer.padding[0])
            self.stride = layer.stride[0]
        self.k = w.shape[-1]
        wi = torch.round(w * (1 << WFRAC))
        bi = torch.round(b * (1 << (FRAC + WFRAC)))
        worst = wi.abs().flatten(1).sum(1) * ACT_MAX + bi.abs()
        if float(worst.max()) >= EXACT:
            raise ValueError("layer weights too large for exact fixed-point arithmetic")
        self.out_channels = wi.shape[0]
        self.weight = wi.reshape(wi.shape[0], -1).to(device)
        self.bias = bi.view(-1, 1).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: [1, C, H, W] fixed-point integers (float64) -> [1, O, H', W'] fixed point, clamped."""
        if self.up > 1:
            _, c, h, w = x.shape
            z = x.new_zeros(1, c, (h - 1) * self.up + 1, (w - 1) * self.up + 1)
            z[:, :, :: self.up, :: self.up] = x
            x = z
        lo, hi = self.pad
        if lo or hi:
            x = F.pad(x, (lo, hi, lo, hi))
        k, s = self.k, self.stride
        ho = (x.shape[2] - k) // s + 1
        wo = (x.shape[3] - k) // s + 1
        if k == 1 and s == 1:
            out = (int_matmul(self.weight, x.flatten(2)[0]) + self.bias).view(1, self.out_channels, ho, wo)
            return _shift_round(out, WFRAC).clamp_(-ACT_MAX, ACT_MAX)
        rows = max(1, self.CHUNK // max(wo, 1))
        out = x.new_empty(1, self.out_channels, ho, wo)
        for r0 in range(0, ho, rows):
            r1 = min(r0 + rows, ho)
            band = x[:, :, r0 * s : (r1 - 1) * s + k]
            cols = F.unfold(band, k, stride=s)[0]  # [C*k*k, positions], ordered like the weight rows
            acc = int_matmul(self.weight, cols) + self.bias
            out[0, :, r0:r1] = acc.view(self.out_channels, r1 - r0, wo)
        return _shift_round(out, WFRAC).clamp_(-ACT_MAX, ACT_MAX)


#: Fractional bits of GDN's gamma (beta at 2^(FRAC + GFRAC)); FRAC + GFRAC is even, so the
#: normaliser's square root rescales by a power of two.
GFRAC = 20
#: Inputs of `ExactGDN` are clamped to +-GDN_ACT (real +-256), which bounds its sums below 2^53.
GDN_ACT = float(1 << (FRAC + 8))


class ExactGDN:
    """Forward GDN, y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2), on fixed-point integers.

    The normaliser is an integer sum below 2^53 (exact in any order); its square root and the one
    division per value are IEEE 754 operations on exact operands, which every conforming device
    rounds the same way (correctly), so the result is the same integer everywhere. `beta`, `gamma`:
    the layer's effective (non-negative) parameters."""

    def __init__(self, beta: torch.Tensor, gamma: torch.Tensor, device: torch.device) -> None:
        g = torch.round(gamma.detach().double().cpu() * (1 << GFRAC))
        b = torch.round(beta.detach().double().cpu() * (1 << (FRAC + GFRAC)))
        if float(b.min()) < 1:
            raise ValueError("GDN beta too small for exact fixed-point arithmetic")
        worst = g.sum(1) * (GDN_ACT * GDN_ACT / ONE) + b
        if float(worst.max()) >= EXACT:
            raise ValueError("GDN gamma too large for exact fixed-point arithmetic")
        # GDN's gamma is often diagonal (off-diagonal entries clamped to zero): the same integers then
        # come from a per-channel product, without the matrix product over channels
        self.diagonal = bool(torch.equal(g, torch.diag(torch.diag(g))))
        self.gamma = (torch.diag(g).view(-1, 1) if self.diagonal else g).to(device)
        self.beta = b.view(-1, 1).to(device)
        self.scale = float(1 << ((FRAC + GFRAC) // 2))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: [1, C, H, W] fixed-point integers (float64) -> the same shape, fixed point."""
        x = x.clamp(-GDN_ACT, GDN_ACT)
        sq = _shift_round(x * x, FRAC).flatten(2)[0]
        norm = (self.gamma * sq if self.diagonal else int_matmul(self.gamma, sq)) + self.beta  # at 2^(FRAC + GFRAC)
        y = torch.floor(x.flatten(2)[0] * self.scale / torch.sqrt(norm) + 0.5)
        return y.view_as(x).clamp_(-ACT_MAX, ACT_MAX)


def exact_scale(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Fixed-point x times a real per-channel gain (quantized to WFRAC bits), exactly."""
    g = torch.round(gain.detach().double() * (1 << WFRAC)).to(x.device)
    return _shift_round(x * g, WFRAC).clamp_(-ACT_MAX, ACT_MAX)


class ExactSequential:
    """nn.Sequential of Conv2d / ConvTranspose2d / GELU layers, in fixed point."""

    def __init__(self, seq: nn.Sequential | nn.Module, tables: Tables, device: torch.device) -> None:
        self.tables = tables
        self.layers: list = []
        for layer in (seq if isinstance(seq, nn.Sequential) else [seq]):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                self.layers.append(ExactConv(layer, device))
            elif isinstance(layer, nn.GELU):
                self.layers.append(tables.gelu)
            else:
                raise ValueError(f"no exact version of {type(layer).__name__}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ExactLinearAttention:
    """`contexts.LinearAttention` in fixed point: same projections, feature map and normalisation."""

    def __init__(self, att: nn.Module, tables: Tables, device: torch.device) -> None:
        self.tables = tables
        self.q, self.k, self.v, self.out = (ExactConv(getattr(att, n), device) for n in ("q", "k", "v", "out"))

    def __call__(self, q_in: torch.Tensor, kv_in: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        _, _, h, w = q_in.shape
        n = h * w
        shift = max(0, math.ceil(math.log2(n)))
        if n > 1 << 20:  # k.v products < 2^32.1, so sums over 2^20 positions stay below 2^53
            raise ValueError("exact attention is bounded to 2^20 latent positions per tile")
        t = self.tables
        q = t.phi(self.q(q_in).clamp_(-ATT_MAX, ATT_MAX)).flatten(2)[0]  # [d, N]
        k = t.phi(self.k(kv_in).clamp_(-ATT_MAX, ATT_MAX))
        v = self.v(kv_in).clamp_(-ATT_MAX, ATT_MAX)
        if key_mask is not None:
            m = key_mask.to(k.dtype).view(1, 1, h, w)
            k = k * m
            v = v * m
        k = k.flatten(2)[0]
        v = v.flatten(2)[0]
        # summaries rescaled by 2^-(FRAC + shift) and 2^-shift: same real ratio, bounded magnitudes
        kv = _shift_round(int_matmul(k, v.T), FRAC + shift)  # [d, e]
        ks = _shift_round(k.sum(dim=1, keepdim=True), shift)  # [d, 1]
        num = int_matmul(kv.T, q).long()  # [e, N]
        den = int_matmul(ks.T, q).long().clamp_(min=1)  # [1, N]
        out = torch.div(num * ONE + den // 2, den, rounding_mode="floor").double()
        return self.out(out.view(1, -1, h, w))
