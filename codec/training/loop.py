"""Rate-distortion training of the image model on CPU or CUDA, one process or many (torchrun).

loss = lambda(q) * 255^2 * MSE + bpp per sample (or lambda_ms(q) * (1 - MS-SSIM) + bpp), with a random
quality q per sample so one checkpoint learns every rate. Checkpoints (``last.pt``) hold the model,
optimizer, step and RNG states, so a run continues exactly where it stopped.

The step never waits for the device: logged metrics are summed on the device and read back once every
``log_every`` steps (the averages over those steps are logged), qualities reach a GPU through pinned
memory, and patches from a pack (``.lcp``) are drawn on the device itself. Under torchrun with a time
limit, rank 0 decides every ``log_every`` steps whether to stop and every rank follows, so all stop at
the same step. The model runs channels_last and, where the device computes bf16 natively (CUDA, CPUs
with AVX512-BF16 or AMX), under bf16 autocast (`fast_path`); `--compile` adds torch.compile. An
exponential moving average of the weights (`ema`) is kept beside them, checkpointed and exported. While
a file named PAUSE exists in the run folder the loop sleeps between steps (to free the cores for a
timed benchmark without stopping the run).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TextIO

import torch
from torch import nn
from tqdm import tqdm

from ..errors import InputError
from ..image_model import ARCHITECTURES, ImageModel, ModelConfig
from ..metrics import psnr_from_mse
from ..quality import DEFAULT_LEVELS, LAMBDAS, QUALITY_MIN, lambda_for
from ..registry import bundled_paths, load_learned, load_weights_file, read_weights_metadata
from .data import PatchSampler
from .ema import ParameterAverage, averaged_state
from .fast_path import FastPath, choose_fast_path
from .config import TrainConfig
from .runtime import agree, close_run, lr_at, save_atomic, start_run
from .validate import val_qualities, validate

#: lambda for MS-SSIM training relative to the MSE lambda at the same quality (about the ratio
#: between the MSE and MS-SSIM lambdas commonly used for the same rates).
MSSSIM_LAMBDA_RATIO = 1300.0


#: ImageModel's top-level parts (`--train-only` takes these or any of their submodules, e.g. g_s.blocks)
MODEL_PARTS = ("g_a", "g_s", "h_a", "h_s", "z_prior", "context", "gain")


def check_parts(model: nn.Module, parts: list[str]) -> None:
    """ValueError unless every name in `parts` is a submodule of `model` (and there is at least one)."""
    def known(name: str) -> bool:
        try:
            model.get_submodule(name)
        except AttributeError:
            return False
        return bool(name)

    if not parts or not all(known(p) for p in parts):
        raise ValueError(f"--train-only takes parts among {', '.join(MODEL_PARTS)} or their submodules "
                         f"(e.g. g_s.blocks), got {', '.join(parts) or 'none'}")


def freeze_parts(model: nn.Module, train_only: list[str] | None) -> None:
    """Stop gradients to every parameter outside the submodules named in `train_only` (None: all train)."""
    if train_only is None:
        return
    check_parts(model, train_only)
    model.requires_grad_(False)
    for name in train_only:
        model.get_submodule(name).requires_grad_(True)


def param_groups(model: ImageModel, cfg: TrainConfig) -> list[dict]:
    """Everything at the base rate except the quality gain vectors (registered last), which get
    `gain_lr_scale` times it: stored as logs, they would otherwise move ~lr per step and leave each
    quality's quantization step near its initial value for thousands of steps. Both groups keep
    frozen parameters (see `freeze_parts`), which never get a gradient, so checkpoints written with
    and without `--train-only` have the same layout."""
    gain_ids = {id(p) for p in model.gain.parameters()}
    rest = [p for p in model.parameters() if id(p) not in gain_ids]
    return [{"params": rest, "lr_scale": 1.0}, {"params": list(model.gain.parameters()), "lr_scale": cfg.gain_lr_scale}]


def _load_optimizer(opt: torch.optim.Optimizer, saved: dict) -> None:
    """Load optimizer state, also from checkpoints written with a single parameter group.

    Each group's `lr_scale` stays the one this run's configuration gave it (loading replaces the
    group dicts with the saved ones)."""
    scales = [g["lr_scale"] for g in opt.param_groups]
    groups = saved["param_groups"]
    if len(groups) == 1 and len(opt.param_groups) == 2:
        ids = groups[0]["params"]
        n_rest = len(opt.param_groups[0]["params"])
        saved = {"state": saved["state"],
                 "param_groups": [{**groups[0], "params": ids[:n_rest]}, {**groups[0], "params": ids[n_rest:]}]}
    opt.load_state_dict(saved)
    for g, scale in zip(opt.param_groups, scales):
        g["lr_scale"] = scale


def sample_qualities(n: int, gen: torch.Generator, bias: float = 1.0, levels: int = DEFAULT_LEVELS) -> torch.Tensor:
    """Qualities in [1, levels]: half at integer levels, half anywhere in between (trains interpolation too).

    `bias` > 1 skews both halves towards low qualities (a uniform u becomes u**bias): low-rate
    samples have small losses, so with uniform sampling the shared transform drifts towards the
    top levels. bias = 1 is uniform and draws exactly the numbers it always did."""
    span = levels - QUALITY_MIN
    if bias == 1.0:
        ints = torch.randint(0, levels, (n,), generator=gen).float() + QUALITY_MIN
        cont = torch.rand(n, generator=gen) * span + QUALITY_MIN
    else:
        u = torch.rand(n, generator=gen) ** bias
        ints = (u * levels).floor().clamp(max=levels - 1) + QUALITY_MIN
        cont = torch.rand(n, generator=gen) ** bias * span + QUALITY_MIN
    pick = torch.rand(n, generator=gen) < 0.5
    return torch.where(pick, ints, cont)


def rd_loss(out: dict, x: torch.Tensor, q: torch.Tensor, metric: str = "mse",
            level_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Per-batch rate-distortion loss and its parts (bpp and PSNR are batch means).

    "loss" is the plain mean of lambda * D + R (comparable across runs); "objective", what training
    minimises, weights each sample by (lambda(q) / lambda(1))**-level_weight. Scaling one level's loss
    does not move that level's rate-distortion optimum, but high levels have losses tens of times
    larger than low ones, so unweighted they decide the direction of every clipped step taken by the
    shared transforms; the weight evens out their say (0 = unweighted)."""
    b, _, h, w = x.shape
    bits = -(torch.log2(out["y_likelihoods"].float()).flatten(1).sum(1)
             + torch.log2(out["z_likelihoods"].float()).flatten(1).sum(1))
    bpp = bits / (h * w)
    x_hat = out["x_hat"].float()
    mse = ((x_hat - x) ** 2).flatten(1).mean(1)
    lam = lambda_for(q).to(x.device)
    if metric == "mse":
        dist_term = lam * 255.0**2 * mse
    elif metric == "ms-ssim":
        from pytorch_msssim import ms_ssim

        msssim = ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0, size_average=False)
        dist_term = lam * MSSSIM_LAMBDA_RATIO * (1 - msssim)
    else:
        raise ValueError(f"unknown metric {metric!r} (mse or ms-ssim)")
    psnr = psnr_from_mse(mse.detach(), peak=1.0)
    per_sample = dist_term + bpp
    if level_weight:
        weight = (lam / LAMBDAS[0]) ** -level_weight
        objective = (weight * per_sample).mean()
    else:
        objective = per_sample.mean()
    return {"objective": objective, "loss": per_sample.mean().detach(), "bpp": bpp.mean().detach(),
            "psnr": psnr.mean(), "mse": mse.mean().detach()}


def train_step(net, model: ImageModel, opt: torch.optim.Optimizer, x: torch.Tensor, q: torch.Tensor,
               cfg: TrainConfig, fast: FastPath | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One optimizer step on a batch (forward under the fast path's autocast, loss, backward, gradient
    clipping, update): the loss parts and the gradient norm, left on the device. `net` is what is
    called (DDP and/or compiled wrapper of `model`); the training loop and `bench train-speed` share it."""
    fast = fast or FastPath(channels_last=False, bf16=False)
    with fast.autocast(x.device):
        out = net(x, q)
    parts = rd_loss(out, x, q, cfg.metric, cfg.level_weight)
    opt.zero_grad(set_to_none=True)
    parts["objective"].backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    opt.step()
    return parts, grad_norm


def config_from_dict(d: dict) -> TrainConfig:
    """A TrainConfig from a checkpoint's stored config: fields added since get their defaults, fields
    no longer known are dropped."""
    known = set(TrainConfig.__dataclass_fields__)
    return TrainConfig(**{k: v for k, v in d.items() if k in known})


def _note(msg: str) -> None:
    print(f"lcodec: note: {msg}", file=sys.stderr, flush=True)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host tensor to `device` without making the host wait (pinned memory, asynchronous copy)."""
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def maybe_compile(net, device: torch.device, wanted: bool, quiet: bool = False):
    """(module to call, whether it is compiled): `torch.compile(net)` when asked for (CUDA or CPU); if
    compiling fails, `net` itself with a note (never an error: it only costs speed). The compilation
    itself happens at the first step."""
    if not wanted:
        return net, False
    try:
        return torch.compile(net), True
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, eager mode still trains
        if not quiet:
            _note(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:100]}); running eagerly")
        return net, False


def load_checkpoint(path: str | Path) -> dict:
    """Load a training checkpoint (plain tensors and containers only: no pickled code runs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - the restricted unpickler meets any bytes with any error
        first = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise ValueError(f"not a readable lcodec checkpoint: {path} ({type(exc).__name__}: {first})") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise ValueError(f"not an lcodec training checkpoint: {path}")
    return state


def _save_checkpoint(path: Path, model, opt, step: int, cfg: TrainConfig, gen: torch.Generator, sampler,
                     ema: ParameterAverage | None) -> None:
    state = {
        "model": model.state_dict(),
        "ema": ema.state_dict() if ema else None,
        "optimizer": opt.state_dict(),
        "step": step,
        "config": asdict(cfg),
        "torch_rng": torch.get_rng_state(),
        "gen_rng": gen.get_state(),
        "sampler_seed": step,  # patch sampling resumes from a step-derived seed
    }
    save_atomic(state, path)


def _read_init(path: str, tensors: bool = True) -> tuple[dict[str, torch.Tensor] | None, dict | None]:
    """Tensors (without CDF tables; None unless `tensors`) and architecture of --init weights (.lcw, or
    a bundled model's name) or a checkpoint (.pt). Without `tensors` a weights file is read only as far
    as its header."""
    path = str(bundled_paths().get(path, path))
    if path.endswith(".pt"):
        ckpt = load_checkpoint(path)
        state, arch = ckpt["model"], ckpt.get("config", {}).get("model")
    else:
        state, meta = load_weights_file(path) if tensors else (None, read_weights_metadata(path))
        arch = json.loads(meta["config"]) if "config" in meta else None
    if not tensors:
        return None, arch
    # exported weights carry the coder's CDF tables; a training model rebuilds them at export
    return {k: v for k, v in state.items() if not k.endswith("cdf_table")}, arch


def init_architecture(path: str) -> ModelConfig:
    """The architecture of --init weights (from the file's header only) or a checkpoint (the default if
    the file does not say)."""
    arch = _read_init(path, tensors=False)[1]
    return ModelConfig.from_dict(arch) if arch else ModelConfig()


def resolve_architecture(cfg: TrainConfig, resumed: tuple[Path, dict] | None, init_arch: dict | None) -> dict:
    """The run's ModelConfig fields: as given, else the resumed run's, else --init's, else the bundled
    model's (ARCHITECTURES["default"]).

    `resumed` is the (path, state) of the checkpoint being resumed; `init_arch` the architecture the
    --init file names (both already read by the caller, which needs them again)."""
    saved = resumed[1].get("config", {}).get("model") if resumed is not None else None
    if cfg.model is not None:
        wanted = ModelConfig.from_dict(cfg.model)
        if saved and ModelConfig.from_dict(saved) != wanted:
            raise ValueError(f"the run being resumed ({resumed[0]}) has the architecture {saved}, not "
                             f"{wanted.to_dict()}; start it elsewhere or with --no-resume")
        return wanted.to_dict()
    if saved:
        return ModelConfig.from_dict(saved).to_dict()
    return (ModelConfig.from_dict(init_arch) if init_arch else ARCHITECTURES["default"]).to_dict()


def _init_weights(model: ImageModel, state: dict[str, torch.Tensor]) -> bool:
    """Load --init tensors into `model`, widening them if the model is wider; True if widened."""
    from .widen import widen_state

    own = model.state_dict()
    widened = any(k not in state for k in own if not k.endswith("cdf_table")) or \
        any(k in own and own[k].shape != v.shape for k, v in state.items())
    if widened:
        state = widen_state(model, state)
    if problems := load_learned(model, state):
        raise ValueError(f"--init weights do not match the model: {', '.join(problems[:3])}")
    return widened


def is_pack_path(data: str | Path) -> bool:
    """`--data` names a patch pack (a .lcp file, or any file) rather than a folder of photos."""
    p = Path(data)
    return p.suffix == ".lcp" or p.is_file()


def make_sampler(cfg: TrainConfig, device: torch.device, seed: int):
    """Patches from a pack file (.lcp, drawn on the device) or from a folder of photos (PIL, on the host)."""
    if is_pack_path(cfg.data):
        from .patch_pack import PackSampler

        return PackSampler(cfg.data, cfg.patch, device, seed=seed)
    return PatchSampler(cfg.data, cfg.patch, seed=seed)


def wait_while_paused(out: Path, bar=None) -> float:
    """Sleep while `out/PAUSE` exists (seconds slept): a timed benchmark can have the cores without
    stopping the run (`touch OUT/PAUSE`, then `rm OUT/PAUSE`)."""
    flag = out / "PAUSE"
    if not flag.exists():
        return 0.0
    t0 = time.time()
    if bar is not None:
        bar.set_description("train (paused)")
    while flag.exists():
        time.sleep(1.0)
    if bar is not None:
        bar.set_description("train")
    return time.time() - t0


def _start_summary(cfg: TrainConfig, model: ImageModel, device: torch.device, fast: FastPath, compiled: bool,
                   sampler, step: int, resumed: Path | None, ema: ParameterAverage | None) -> str:
    """What a run is about to do, in a few lines (printed before the progress bar)."""
    n_params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    arch = ", ".join(f"{k}={v}" for k, v in ModelConfig.from_dict(cfg.model).to_dict().items())
    dev = str(device) if device.type != "cpu" else f"cpu, {torch.get_num_threads()} threads"
    data = (f"{len(sampler.images)} photos in {cfg.data}" if hasattr(sampler, "images")
            else f"patch pack {cfg.data}")
    start = f"resuming {resumed} at step {step}" if resumed else (f"from {cfg.init}" if cfg.init else "from scratch")
    lines = [f"device: {dev}; {fast.describe()}{'; torch.compile' if compiled else ''}",
             f"model: {arch}; {n_params / 1e6:.2f} M parameters"
             + (f" ({trainable / 1e6:.2f} M trained)" if trainable != n_params else ""),
             f"data: {data}; {cfg.patch}x{cfg.patch} patches, batch {cfg.batch}",
             f"run: {start}; {cfg.steps} steps, lr {cfg.lr:g} -> {cfg.min_lr:g}; "
             + (f"EMA decay {ema.decay}" if ema else "no EMA") + f"; log {Path(cfg.out) / 'log.jsonl'}"]
    return "\n".join(lines)


def _validate_both(model: ImageModel, ema: ParameterAverage | None, cfg: TrainConfig, device: torch.device) -> dict:
    """Real-bitstream validation of the raw weights and, if kept, of their EMA (keys prefixed "ema_"),
    and the gap between training and validation loss of the weights `export` would write."""
    from .generalisation import SIDE, fixed_patches, loss_gap

    res = validate(model, cfg.val, cfg.val_images, device)
    exported = model
    if ema is not None:
        exported = copy.deepcopy(model)
        exported.load_state_dict(averaged_state({"model": model.state_dict(), "ema": ema.state_dict()}))
        res.update({f"ema_{k}": v for k, v in validate(exported, cfg.val, cfg.val_images, device).items()})
    if not is_pack_path(cfg.data):  # fixed patches of the photos (a pack holds no whole photos)
        side = min(SIDE, cfg.patch)
        try:
            train_x, val_x = fixed_patches(cfg.data, side=side), fixed_patches(cfg.val, side=side)
        except InputError:  # photos too small for the patches: no gap to report
            return res
        res.update(loss_gap(exported, train_x, val_x, val_qualities(model.config.levels)))
    return res


def _show_validation(res: dict, levels: int) -> str:
    """One line per weight set: real bpp / PSNR at each validation quality."""
    out = []
    for prefix, label in (("", "raw"), ("ema_", "EMA")):
        pts = [f"q{q:g} {res[f'{prefix}q{q:g}_bpp']:.3f} bpp {res[f'{prefix}q{q:g}_psnr']:.2f} dB"
               for q in val_qualities(levels) if f"{prefix}q{q:g}_bpp" in res]
        if pts:
            out.append(f"validation step {res['step']} ({label}): " + ", ".join(pts))
    gaps = [f"q{q:g} {res[f'loss_gap_q{q:g}']:+.3f}" for q in val_qualities(levels) if f"loss_gap_q{q:g}" in res]
    if gaps:
        out.append("loss gap (validation - training patches): " + ", ".join(gaps))
    return "\n".join(out)


def _new_model(cfg: TrainConfig, device: torch.device, fast: FastPath) -> ImageModel:
    """A newly initialised model (drawn from torch's global RNG) on the device, in the fast path's memory
    layout: set here, before DDP and the optimizer see the parameters."""
    model = ImageModel(ModelConfig.from_dict(cfg.model)).to(device)
    if fast.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _restore(model: ImageModel, opt: torch.optim.Optimizer, gen: torch.Generator,
             resumed: tuple[Path, dict] | None, init_state: dict[str, torch.Tensor] | None, cfg: TrainConfig,
             rank: int) -> int:
    """Put a checkpoint's weights, optimizer and RNG states into the run's new objects (resuming), or the
    --init weights (starting from another model); returns the step the run starts at."""
    if resumed is not None:
        state = resumed[1]
        model.load_state_dict(state["model"])
        _load_optimizer(opt, state["optimizer"])
        step = int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        gen.set_state(state["gen_rng"])
        return step
    if init_state is not None and _init_weights(model, init_state) and rank == 0:
        _note(f"widened the --init weights to the architecture {cfg.model} (new channels start near zero)")
    return 0


def _make_ema(model: ImageModel, cfg: TrainConfig, rank: int, resumed: tuple[Path, dict] | None,
              ckpt_path: Path) -> ParameterAverage | None:
    """The weight average rank 0 keeps when `ema_decay` > 0 (else None), continued from the checkpoint's
    average when resuming, or from the raw weights if the checkpoint has none."""
    if not (cfg.ema_decay > 0 and rank == 0):
        return None
    ema = ParameterAverage(model, cfg.ema_decay)
    if resumed is not None:
        if resumed[1].get("ema"):
            ema.load_state_dict(resumed[1]["ema"])
        else:
            _note(f"{ckpt_path} has no EMA weights; the average starts from its raw weights")
    return ema


def _wrap(model: ImageModel, world: int, local_rank: int, device: torch.device, cfg: TrainConfig,
          rank: int) -> tuple[nn.Module, nn.Module, bool]:
    """What the steps run: the model, inside DistributedDataParallel under torchrun, then through
    torch.compile where asked. Returns (eager, net, compiled), eager kept for a failed compile to fall
    back to."""
    eager = model
    if world > 1:
        eager = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    net, compiled = maybe_compile(eager, device, cfg.compile, quiet=rank != 0)
    return eager, net, compiled


def _start_log(out: Path, cfg: TrainConfig, summary: str | None) -> TextIO:
    """Rank 0's start of a run: the configuration written to the run folder, the summary printed (None:
    not shown), and the JSONL log opened for appending."""
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    if summary is not None:
        print(summary, file=sys.stderr, flush=True)
    return open(out / "log.jsonl", "a")


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """The schedule's learning rate for this step, scaled per parameter group (see `param_groups`)."""
    for g in opt.param_groups:
        g["lr"] = lr * g["lr_scale"]


def _compiled_first_step(net, eager, rank: int, model: ImageModel, opt: torch.optim.Optimizer, x: torch.Tensor,
                         q: torch.Tensor, cfg: TrainConfig,
                         fast: FastPath) -> tuple[dict[str, torch.Tensor], torch.Tensor, nn.Module, bool]:
    """The run's first step through torch.compile. Compiling happens there, and if it fails the step is
    taken eagerly and the run goes on without it (a failure at any later step is a real one, re-raised by
    the caller). Returns the loss parts, the gradient norm, the net to use from now on and whether it is
    compiled."""
    try:
        return (*train_step(net, model, opt, x, q, cfg, fast), net, True)
    except Exception as exc:  # noqa: BLE001 - only a compiled first step falls back
        if rank == 0:
            _note(f"torch.compile failed at the first step ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0][:100] if str(exc) else ''}); running eagerly")
        return (*train_step(eager, model, opt, x, q, cfg, fast), eager, False)


class _RunningMeans:
    """Sums of the logged metrics (loss, bpp, PSNR, MSE, gradient norm) since the last log row, kept on
    the device so that the step never waits for it; read back once per row."""

    KEYS = ("loss", "bpp", "psnr", "mse")

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None
        self.n = 0

    def add(self, parts: dict[str, torch.Tensor], grad_norm: torch.Tensor) -> None:
        vals = torch.stack([parts["loss"].detach().float(), parts["bpp"].float(), parts["psnr"].float(),
                            parts["mse"].float(), grad_norm.detach().float()])
        self.sums = vals if self.sums is None else self.sums + vals
        self.n += 1

    def row(self, step: int, lr: float, start: float) -> dict:
        """The log row of the means since the last one (the only read-back of metrics), and a new start."""
        mean = (self.sums / self.n).tolist()
        row = {k: round(v, 5) for k, v in zip(self.KEYS, mean[:4])}
        row.update(step=step, lr=lr, grad_norm=round(mean[4], 4), elapsed_s=round(time.time() - start, 1),
                   kind="train")
        self.sums, self.n = None, 0
        return row


def _over_time(cfg: TrainConfig, start: float, sync_point: bool, world: int, device: torch.device) -> bool:
    """Whether --time-limit has passed. Under torchrun rank 0 decides, at sync points only: every rank
    must stop at the same step, or DDP waits forever."""
    over_time = bool(cfg.time_limit) and (time.time() - start) > cfg.time_limit * 60
    if world > 1 and cfg.time_limit:
        over_time = agree(over_time, device) if sync_point else False
    return over_time


def _write_row(log: TextIO, row: dict) -> None:
    """Append one row to the JSONL log, flushed (the log is read while the run goes on)."""
    log.write(json.dumps(row) + "\n")
    log.flush()


def _validate_and_log(model: ImageModel, ema: ParameterAverage | None, cfg: TrainConfig, device: torch.device,
                      step: int, log: TextIO, bar: tqdm, progress: bool) -> None:
    """Validate the raw and averaged weights on real bitstreams, log the row, show it (with `progress`),
    and put the model back in training mode."""
    bar.set_description("train (validating)")
    res = _validate_both(model, ema, cfg, device)
    res.update(step=step, kind="val")
    _write_row(log, res)
    bar.set_description("train")
    if progress:
        bar.write(_show_validation(res, model.config.levels), file=sys.stderr)
    model.train()


def train(cfg: TrainConfig, resume: bool = True, progress: bool = True) -> Path:
    """Run (or continue) training; returns the path of the last checkpoint."""
    rank, world, local_rank, device, out, ckpt_path = start_run(cfg.device, cfg.out)
    log_every = max(1, int(cfg.log_every))

    resumed = (ckpt_path, load_checkpoint(ckpt_path)) if resume and ckpt_path.exists() else None
    init_state, init_arch = _read_init(cfg.init) if cfg.init and resumed is None else (None, None)
    cfg = replace(cfg, model=resolve_architecture(cfg, resumed, init_arch))
    torch.manual_seed(cfg.seed + rank)
    fast = choose_fast_path(device, cfg.channels_last, cfg.bf16)
    model = _new_model(cfg, device, fast)
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1000 * rank)
    step = _restore(model, opt, gen, resumed, init_state, cfg, rank)
    freeze_parts(model, cfg.train_only)
    ema = _make_ema(model, cfg, rank, resumed, ckpt_path)
    sampler = make_sampler(cfg, device, seed=cfg.seed + 7919 * rank + step)
    eager, net, compiled = _wrap(model, world, local_rank, device, cfg, rank)
    summary = (_start_summary(cfg, model, device, fast, compiled, sampler, step, resumed[0] if resumed else None, ema)
               if progress and rank == 0 else None)
    log = _start_log(out, cfg, summary) if rank == 0 else None
    start = time.time()
    last_ckpt = time.time()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress or rank != 0, dynamic_ncols=True, desc="train")
    first_step = step
    means = _RunningMeans()

    def save() -> None:
        _save_checkpoint(ckpt_path, model, opt, step, cfg, gen, sampler, ema)

    model.train()
    try:
        while step < cfg.steps:
            if rank == 0:
                start += wait_while_paused(out, bar)  # a pause does not count towards --time-limit
            lr = lr_at(cfg, step)
            _set_lr(opt, lr)
            x = fast.layout(to_device(sampler.batch(cfg.batch), device))
            q = to_device(sample_qualities(cfg.batch, gen, cfg.quality_bias, model.config.levels), device)
            if compiled and step == first_step:
                parts, grad_norm, net, compiled = _compiled_first_step(net, eager, rank, model, opt, x, q, cfg, fast)
            else:
                parts, grad_norm = train_step(net, model, opt, x, q, cfg, fast)
            if ema is not None:
                ema.update(model)
            step += 1
            bar.update(1)
            if rank == 0:
                means.add(parts, grad_norm)
            sync_point = step % log_every == 0
            over_time = _over_time(cfg, start, sync_point, world, device)
            if rank == 0 and (sync_point or step == cfg.steps or over_time):
                row = means.row(step, lr, start)
                _write_row(log, row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", bpp=f"{row['bpp']:.3f}", psnr=f"{row['psnr']:.2f}")
            if rank == 0 and cfg.val and cfg.val_every and step % cfg.val_every == 0:
                _validate_and_log(model, ema, cfg, device, step, log, bar, progress)
            if rank == 0 and (time.time() - last_ckpt > cfg.ckpt_minutes * 60 or step == cfg.steps or over_time):
                save()
                last_ckpt = time.time()
            if over_time:
                break
    except Exception:
        raise
    except BaseException:  # Ctrl-C, or SIGTERM/SIGHUP turned into an exception by the CLI: keep the steps done
        if rank == 0 and world == 1 and step > first_step:
            save()
        raise
    finally:
        close_run(bar, log, world)
    if rank == 0 and not ckpt_path.exists():
        save()
    return ckpt_path
