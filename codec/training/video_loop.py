"""Training of the spatiotemporal entropy model, with the image model frozen.

The loss is the P-frame rate in bits per pixel of y_t given the two previous latents (plus, with
``distortion``, lambda * 255^2 * MSE of the reconstruction through the frozen g_s). Two ways to get
references:

* three-frame crops (default): references stand in for decoded latents as y + U(-1/2, 1/2) (the
  quantization error the decoder's latents carry); a quarter of the samples use y_{t-1} for both
  references, as the first P-frame after an I-frame does;
* decoded P-chains (``chain`` = K): an I-frame decoded by the image model, then K P-frames, each
  predicted from the previous ones as this model decoded them, so training sees the errors that
  low-delay coding carries from frame to frame (gradients stop at each reference).

Same conveniences as image training: resume from ``last.pt``, JSONL log, bf16 autocast where the
device computes bf16 natively (CUDA, AVX512-BF16 or AMX CPUs), DistributedDataParallel under torchrun,
a progress bar.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from lcodec.entropy_models.quantize import noisy_or_rounded

from ..metrics import psnr_from_mse
from ..quality import QUALITY_MIN, lambda_for
from ..registry import get_model, load_learned
from .fast_path import FastPath, choose_fast_path
from .config import VideoTrainConfig
from ..video_model import build_temporal_model, init_from_image
from .loop import load_checkpoint
from .runtime import close_run, lr_at, save_atomic, start_run
from .video_data import LatentClips


def _rates(st, y: torch.Tensor, ref1: torch.Tensor, ref2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bits per pixel of each latent in the batch under the temporal model (noisy-rate proxy), and y_hat."""
    y_hat, y_lik, z_lik = st(y, ref1, ref2)
    pixels = y.shape[-2] * y.shape[-1] * 256
    bits = -(torch.log2(y_lik.float()).flatten(1).sum(1) + torch.log2(z_lik.float()).flatten(1).sum(1))
    return bits / pixels, y_hat


def _distortion(image_model, y: torch.Tensor, y_hat: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Per-sample pixel MSE of the P-frame reconstruction against the unquantized one (g_s frozen).

    Rate alone would let the latent residual prediction drift towards whatever helps the context
    model, and the reconstruction would lose quality along a GOP; this keeps it honest."""
    ig = image_model.gain.inverse_gain(q)
    with torch.no_grad():
        target = image_model.g_s(y * ig)
    return ((image_model.g_s(y_hat * ig) - target).float() ** 2).flatten(1).mean(1)


@torch.no_grad()
def _intra_decoded(image_model, y: torch.Tensor) -> torch.Tensor:
    """y_hat of gained latents coded as I-frames (rounded, as the decoder gets them; float32 even
    under autocast, where bf16 would move the values off the quantization grid)."""
    with torch.autocast(device_type=y.device.type, enabled=False):
        return image_model.entropy_pass(y.float(), training=False)[0]


class _Chain(torch.nn.Module):
    """K P-frames after an intra-decoded frame, each from the previous decoded latents; one module
    so that DistributedDataParallel sees one forward per step."""

    def __init__(self, st, image_model, distortion: bool) -> None:
        super().__init__()
        self.st = st
        self.image = [image_model]  # frozen; kept out of this module's parameters
        self.distortion = distortion

    def forward(self, ys: list[torch.Tensor], q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-frame, per-sample rates [K, B] and distortions [K, B] (None without `distortion`)."""
        image_model = self.image[0]
        ref = _intra_decoded(image_model, ys[0])
        refs = [ref, ref]
        rates, mses = [], []
        for y in ys[1:]:
            bpp, y_hat = _rates(self.st, y, refs[-1], refs[0])
            rates.append(bpp)
            if self.distortion:
                mses.append(_distortion(image_model, y, y_hat, q))
            refs = [refs[-1], y_hat.detach()]
        return torch.stack(rates), torch.stack(mses) if mses else None


def _load_temporal(st, path: str) -> None:
    """Start from earlier temporal weights (e.g. to follow a retrained image model quickly)."""
    if path.endswith(".pt"):
        state = load_checkpoint(path)["model"]
    else:
        from ..video_model import parse_video_weights

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"video weights not found: {p}")
        state = parse_video_weights(p.read_bytes(), str(p))[0]
    if problems := load_learned(st, state):
        raise ValueError(f"--init-temporal weights {path} do not match the video model ({problems[0]})")


def _resume_or_init(st, opt: torch.optim.Optimizer, gen: torch.Generator, image, cfg: VideoTrainConfig,
                    ckpt_path: Path, resume: bool) -> int:
    """Continue from the run's checkpoint (which must come from the same image weights: the temporal
    model predicts that model's latents), or start the temporal model from the image model's entropy
    model and then, if given, from --init-temporal weights; returns the step the run starts at."""
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if state.get("image_hash") != image.weights_hash.hex():
            raise ValueError(f"{ckpt_path} was trained on other image weights than --init {cfg.init}")
        st.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        gen.set_state(state["gen_rng"])
        return step
    init_from_image(st, image.model)
    if cfg.init_temporal:
        _load_temporal(st, cfg.init_temporal)
    return 0


@torch.no_grad()
def _three_frame_refs(ys: list[torch.Tensor], batch: int, gen: torch.Generator,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y_t and its two references from a three-frame crop's latents: the earlier latents plus
    U(-1/2, 1/2) noise, standing in for the decoder's quantization error, and for a quarter of the
    samples y_{t-1} as both references (as the first P-frame after an I-frame has)."""
    y, ref1, ref2 = ys[2], noisy_or_rounded(ys[1], True), noisy_or_rounded(ys[0], True)
    first_p = (torch.rand(batch, generator=gen) < 0.25).to(device).view(-1, 1, 1, 1)
    return y, ref1, torch.where(first_p, ref1, ref2)


def _p_frame_costs(net, image_model, cfg: VideoTrainConfig, ys: list[torch.Tensor], q: torch.Tensor,
                   gen: torch.Generator, fast: FastPath,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Forward pass on one batch of gained latents (a decoded P-chain with `chain`, else a three-frame
    crop): the per-sample P-frame rates, their distortions (None without `distortion`) and the latents of
    the last P-frame (what the log compares with intra coding)."""
    if cfg.chain:
        with fast.autocast(device):
            bpp, mse = net(ys, q)  # [K, B] each
        return bpp, mse, ys[-1]
    y, ref1, ref2 = _three_frame_refs(ys, cfg.batch, gen, device)
    with fast.autocast(device):
        bpp, y_hat = _rates(net, y, ref1, ref2)
        mse = _distortion(image_model, y, y_hat, q) if cfg.distortion else None
    return bpp, mse, y


@torch.no_grad()
def _intra_bpp(image_model, y: torch.Tensor, batch: int) -> float:
    """What the image model alone would spend on the same latents, in bits per pixel (the log's
    baseline for the P-frame rate)."""
    _, y_lik_i, z_lik_i = image_model.entropy_pass(y, training=True)
    return float((-(torch.log2(y_lik_i).sum() + torch.log2(z_lik_i).sum()))
                 / (batch * y.shape[-2] * y.shape[-1] * 256))


def train_video(cfg: VideoTrainConfig, resume: bool = True, progress: bool = True) -> Path:
    """Run (or continue) temporal-model training; returns the path of the last checkpoint."""
    rank, world, local_rank, device, out, ckpt_path = start_run(cfg.device, cfg.out)
    torch.manual_seed(cfg.seed + rank)

    image = get_model(cfg.init)
    image_model = image.model.to(device).eval()
    for p in image_model.parameters():
        p.requires_grad_(False)
    st = build_temporal_model(image_model.config).to(device)
    opt = torch.optim.AdamW(st.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed + 1000 * rank)
    step = _resume_or_init(st, opt, gen, image, cfg, ckpt_path, resume)
    data = LatentClips(cfg.data, image_model, cfg.skip_first, device=device, progress=progress and rank == 0)
    fast = choose_fast_path(device, channels_last=False, bf16=cfg.bf16)  # latents are small: layout does not matter
    net = _Chain(st, image_model, cfg.distortion) if cfg.chain else st
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[local_rank] if device.type == "cuda" else None)
    if rank == 0:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    log = open(out / "log.jsonl", "a") if rank == 0 else None

    def save() -> None:
        state = {"model": st.state_dict(), "optimizer": opt.state_dict(), "step": step, "config": asdict(cfg),
                 "image_hash": image.weights_hash.hex(), "image_model": image.name,
                 "torch_rng": torch.get_rng_state(), "gen_rng": gen.get_state()}
        save_atomic(state, ckpt_path)

    start = last_ckpt = time.time()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress or rank != 0, dynamic_ncols=True,
               desc="train-video")
    st.train()
    try:
        while step < cfg.steps:
            lr = lr_at(cfg, step)
            for g in opt.param_groups:
                g["lr"] = lr
            length = cfg.chain + 1 if cfg.chain else 3
            frames = [t.to(device) for t in data.window(cfg.batch, cfg.crop, length, gen)]
            q = torch.rand(cfg.batch, generator=gen) * (image_model.config.levels - QUALITY_MIN) + QUALITY_MIN
            q = q.to(device)
            with torch.no_grad():
                g = image_model.gain.gain(q)
                ys = [f * g for f in frames]
            bpp, mse, y = _p_frame_costs(net, image_model, cfg, ys, q, gen, fast, device)
            loss = bpp.mean()
            total = loss if mse is None else (lambda_for(q) * 255.0**2 * mse + bpp).mean()
            opt.zero_grad(set_to_none=True)
            total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(st.parameters(), cfg.clip)
            opt.step()
            step += 1
            if rank == 0 and (step % 10 == 0 or step == cfg.steps):
                intra = _intra_bpp(image_model, y, cfg.batch)
                row = {"bpp_p": round(float(loss.detach()), 5), "bpp_intra": round(intra, 5),
                       "saving": round(1 - float(loss.detach()) / max(intra, 1e-9), 4), "step": step, "lr": lr,
                       "grad_norm": round(float(grad_norm), 4), "elapsed_s": round(time.time() - start, 1),
                       "kind": "train"}
                if mse is not None:
                    row["psnr_vs_unquantized"] = round(float(psnr_from_mse(mse.detach().mean(), peak=1.0)), 3)
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(p=f"{row['bpp_p']:.3f}", intra=f"{intra:.3f}", saving=f"{row['saving']:.1%}")
            bar.update(1)
            over_time = cfg.time_limit and (time.time() - start) > cfg.time_limit * 60
            if rank == 0 and (time.time() - last_ckpt > cfg.ckpt_minutes * 60 or step == cfg.steps or over_time):
                save()
                last_ckpt = time.time()
            if over_time:
                break
    finally:
        close_run(bar, log, world)
    if rank == 0 and not ckpt_path.exists():
        save()
    return ckpt_path
