"""The settings of an image run (`TrainConfig`) and a video run (`VideoTrainConfig`).

Kept free of torch so that the command line builds `lcodec train` / `lcodec train-video` options from
them without importing torch for `--help`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .options import option


@dataclass
class TrainConfig:
    """Everything a run needs; stored in its checkpoints. `lcodec train` builds its options from it."""

    data: str = option(help="Folder of training photos, or a patch pack (.lcp) from `lcodec pack-patches`.",
                       path=True)
    out: str = option(help="Run folder (checkpoints, log.jsonl).", path=True)
    val: str | None = option(None, "Folder of validation images (real bpp/PSNR).", path=True)
    steps: int = option(200_000, min=0)
    batch: int = option(8, min=1)
    patch: int = option(256, "Patch side (multiple of 64).", min=64)
    lr: float = option(1e-4, min=0)
    min_lr: float = option(1e-6, "Cosine schedule floor.", min=0)
    warmup: int = option(500, min=0)
    weight_decay: float = option(0.0, "AdamW weight decay.", min=0)
    clip: float = option(1.0, "Gradient-norm clip (0: none).", min=0)
    #: gain vectors learn faster: they set each quality's step size
    gain_lr_scale: float = option(20.0, cli=False)
    metric: str = option("mse", choices=("mse", "ms-ssim"))
    device: str = option("auto", "auto, cpu, cuda, cuda:1 ...")
    seed: int = option(0)
    val_every: int = option(2000, "Validate every this many steps (0: never).", min=0)
    val_images: int = option(4, min=1)
    ckpt_minutes: float = option(5.0, min=0)
    time_limit: float = option(0.0, "Stop (with a checkpoint) after this many minutes (0: no limit).", min=0)
    init: str | None = option(None, "Start from weights (.lcw, or a bundled model's name) or a checkpoint (.pt).")
    compile: bool = option(False, "torch.compile the model (CUDA or CPU; see docs for when it pays); eager "
                                  "mode, with a note, if it fails.")
    channels_last: bool | None = option(None, "Memory layout of the model (default: channels_last on CUDA and "
                                              "with bf16, else NCHW).")
    bf16: bool = option(True, "bf16 autocast where the device computes bf16 natively (CUDA, CPUs with "
                              "AVX512-BF16 or AMX); --no-bf16 turns it off.")
    ema_decay: float = option(0.999, "Decay of the weights' moving average that `export` writes (0: none).",
                              min=0, max=1, max_open=True)
    #: steps per log row (metrics averaged over them); also when ranks agree to stop
    log_every: int = option(10, cli=False)
    quality_bias: float = option(1.0, "Above 1, draw low quality levels more often (u**BIAS of a uniform u); "
                                      "1 = uniform.", min=0.25, max=4.0)
    level_weight: float = option(0.0, "Weight each sample's loss by (lambda/lambda_1)**-P so high levels, "
                                      "whose losses are largest, do not steer the shared transforms alone; "
                                      "0 = unweighted.", min=0.0, max=1.0)
    #: architecture (ModelConfig fields); None: the resumed run's, else the --init weights', else the
    #: default. Given and wider than --init, the init weights are widened (codec.training.widen).
    model: dict | None = option(None, cli=False)
    #: parts of the model that train (e.g. ["g_s"] or ["g_s.blocks"]); None: all. Frozen parts keep their
    #: --init values, so training only g_s leaves every latent, and so every file's bits, unchanged.
    train_only: list[str] | None = option(None, cli=False)


@dataclass
class VideoTrainConfig:
    """Everything a temporal-model run needs; stored in its checkpoints. `lcodec train-video` builds its
    options from it."""

    data: str = option(help="Folder of video clips.", path=True)
    out: str = option(help="Run folder (checkpoints, log.jsonl).", path=True)
    init: str = option("default", "Image model (bundled name or .lcw) whose latents are modelled.")
    steps: int = option(3000, min=0)
    batch: int = option(8, min=1)
    crop: int = option(16, "Latent crop side (x16 pixels; a multiple of 4).", min=4)
    lr: float = option(2e-4, min=0)
    min_lr: float = option(1e-5, "Cosine schedule floor.", min=0)
    warmup: int = option(100, min=0)
    clip: float = option(1.0, "Gradient-norm clip (0: none).", min=0)
    skip_first: int = option(0, "Frames skipped at the start of every clip (keep benchmark frames out of "
                                "training).", min=0)
    device: str = option("auto", "auto, cpu, cuda, cuda:1 ...")
    seed: int = option(0)
    ckpt_minutes: float = option(5.0, min=0)
    time_limit: float = option(0.0, "Stop (with a checkpoint) after this many minutes (0: no limit).", min=0)
    init_temporal: str | None = option(None, "Start from video weights (.lcv) or a train-video checkpoint.")
    distortion: bool = option(False, "Also penalise the reconstruction error through the frozen g_s (with "
                                     "--chain; on three-frame crops it did not help).", off="--rate-only")
    chain: int = option(0, "Train on decoded P-chains: an I-frame, then this many P-frames each predicted "
                           "from the previous decoded ones (0: three-frame crops with noisy references).",
                        min=0, max=16)
    bf16: bool = option(True, "bf16 autocast where the device computes bf16 natively (CUDA, CPUs with "
                              "AVX512-BF16 or AMX); --no-bf16 turns it off.")
    kind: str = option("video", cli=False)
