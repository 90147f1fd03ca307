"""Decoding gives identical pixels whatever the thread count, run after run (and across devices)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lcodec.entropy_models.fixed_point as fixed_point
from lcodec.bench.determinism import decode_latent, integer_reference
from lcodec.codec import ImageCodec
from lcodec.codec.container import VERSION_FLOAT
from lcodec.codec.metrics import psnr
from lcodec.codec.registry import get_model

ROOT = Path(__file__).resolve().parents[1]

_DECODE = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from lcodec.codec import ImageCodec
from lcodec.codec.registry import get_model
import numpy as np
data = open(sys.argv[2], "rb").read()
img = ImageCodec.default().decode(data)
print(torch.get_num_threads(), hashlib.sha256(np.asarray(img).tobytes()).hexdigest())
"""


def _decode_in_subprocess(threads: int, path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-c", _DECODE, str(threads), str(path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    n, digest = proc.stdout.split()
    assert int(n) == threads  # the caller's setting is restored after decoding
    return digest


def test_same_pixels_with_one_and_two_threads_and_repeated_runs(tmp_path, eval_images):
    # a full 768x512 photo: with free thread counts, 1 and 2 threads gave 26 pixels off by one
    with Image.open(eval_images[0]) as im:
        blob = ImageCodec.default().encode(im.convert("RGB"), 4.0)
    path = tmp_path / "a.lcd"
    path.write_bytes(blob)
    digests = [_decode_in_subprocess(t, path) for t in (1, 2, 2)]
    local = hashlib.sha256(np.asarray(ImageCodec.default().decode(blob)).tobytes()).hexdigest()
    assert len(set(digests + [local])) == 1, digests + [local]


def _crop(path: Path, w: int = 320, h: int = 192) -> np.ndarray:
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"))[:h, :w])


def test_exact_parameters_do_not_depend_on_the_arithmetic_backend(eval_images):
    # what a GPU (or another BLAS, or another thread split) changes is the order of the sums: decoding
    # with plain int64 integer arithmetic on the host instead of torch float64 BLAS must give the same
    # latent and the same pixels, and encoding the same bytes
    codec = ImageCodec.default()
    rgb = _crop(eval_images[1])
    blob = codec.encode(rgb, 5.0)
    assert blob[4] == 4  # format version 4: exact entropy parameters
    ref = decode_latent(codec, blob)
    with integer_reference():
        assert torch.equal(decode_latent(codec, blob), ref)
        assert codec.encode(rgb, 5.0) == blob
        assert np.array_equal(np.asarray(codec.decode(blob)), np.asarray(ImageCodec.default().decode(blob)))
    torch.set_num_threads(2)
    try:
        assert torch.equal(decode_latent(codec, blob), ref)
    finally:
        torch.set_num_threads(1)


def test_float_path_is_not_backend_independent(eval_images):
    # the reason for fixed point: the float parameter nets change when the sums run in another order
    # (here float64 instead of float32 in h_s), and the predicted means move
    model = get_model(None).model
    z = torch.round(torch.randn(1, model.config.nz, 3, 5) * 3)
    a = model.h_s(z)
    b = model.h_s.double()(z.double()).float()
    model.h_s.float()
    assert not torch.equal(a, b)
    engine = model.exact_engine("cpu")
    x = fixed_point.to_fixed(z)
    with integer_reference():
        ref = engine.h_s(x)
    assert torch.equal(engine.h_s(x), ref)


def test_exact_layers_refuse_weights_that_could_overflow():
    conv = torch.nn.Conv2d(4, 4, 3)
    with torch.no_grad():
        conv.weight.fill_(2.0**20)
    with pytest.raises(ValueError, match="too large"):
        fixed_point.ExactConv(conv, torch.device("cpu"))


def test_nonlinearity_tables_match_the_pinned_digest(monkeypatch):
    fixed_point._function_tables.cache_clear()
    tables = fixed_point._function_tables(fixed_point.PINNED_SCALE_MIN)
    assert fixed_point.tables_digest(tables) == fixed_point.LUT_SHA256
    # a platform whose math library rounds one entry differently must refuse, not decode garbage
    monkeypatch.setattr(fixed_point, "_gelu", lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) + 1e-3)
    fixed_point._function_tables.cache_clear()
    with pytest.raises(RuntimeError, match="differently"):
        fixed_point._function_tables(fixed_point.PINNED_SCALE_MIN)
    monkeypatch.undo()
    fixed_point._function_tables.cache_clear()


def test_float_format_versions_still_decode(eval_images):
    rgb = _crop(eval_images[2], 448, 320)
    old = ImageCodec.default()
    old.write_version = VERSION_FLOAT
    new = ImageCodec.default()
    for tile in (None, 256):
        blob_old, blob_new = old.encode(rgb, 4.0, tile=tile), new.encode(rgb, 4.0, tile=tile)
        assert blob_old[4] == (2 if tile else 1) and blob_new[4] == 4
        assert ImageCodec.info(blob_old)["format_version"] == blob_old[4]
        a = np.asarray(new.decode(blob_old)).astype(float)
        b = np.asarray(new.decode(blob_new)).astype(float)
        psnrs = [psnr(x, rgb) for x in (a, b)]
        assert abs(psnrs[0] - psnrs[1]) < 0.1, psnrs
        assert abs(len(blob_old) - len(blob_new)) < 0.01 * len(blob_old) + 16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (GPU encode, CPU decode)")
def test_gpu_encoded_stream_decodes_identically_on_cpu(eval_images):
    with Image.open(eval_images[0]) as im:
        rgb = np.asarray(im.convert("RGB"))
    loaded = get_model(None)  # separate model copies: Module.to() moves a shared model in place
    gpu = ImageCodec(dataclasses.replace(loaded, model=copy.deepcopy(loaded.model)), device="cuda")
    cpu = ImageCodec(dataclasses.replace(loaded, model=copy.deepcopy(loaded.model)), device="cpu")
    for src, dst in ((gpu, cpu), (cpu, gpu)):
        blob = src.encode(rgb, 4.0)
        assert torch.equal(decode_latent(src, blob), decode_latent(dst, blob))  # bit-identical entropy decoding
        # synthesis stays float: pixels may differ by rounding, never more
        assert np.abs(np.asarray(src.decode(blob)).astype(int) - np.asarray(dst.decode(blob))).max() <= 1


def test_exact_layers_compute_what_the_float_layers_compute():
    # the fixed-point versions are the same functions to within their grid (1/1024), not new networks
    model = get_model(None).model
    engine = model.exact_engine("cpu")
    torch.manual_seed(0)
    z = torch.round(torch.randn(1, model.config.nz, 3, 4) * 2)
    with torch.no_grad():
        hyper = model.h_s(z)
        exact = fixed_point.to_real(engine.h_s(fixed_point.to_fixed(z)))
        assert float((exact - hyper).abs().max()) < 0.01 * max(1.0, float(hyper.abs().max()))
        net, xnet = model.context.nets[2], engine.context.nets[2]
        done = torch.randn(1, 2 * model.context.slice_channels, 12, 16)
        h = torch.randn(1, model.config.hyper, 12, 16)
        ref = net.inter(torch.cat([h, done], dim=1), done[:, -model.context.slice_channels:])
        got = fixed_point.to_real(xnet.inter(fixed_point.to_fixed(torch.cat([h, done], dim=1)),
                                             fixed_point.to_fixed(done[:, -model.context.slice_channels:])))
        assert float((got - ref).abs().max()) < 0.01 * max(1.0, float(ref.abs().max()))


def test_bench_determinism_command_reports_identical_latents(tmp_path, eval_images):
    from click.testing import CliRunner

    from lcodec.cli.main import main

    Image.fromarray(_crop(eval_images[3], 192, 128)).save(tmp_path / "a.png")
    out = tmp_path / "det.json"
    res = CliRunner().invoke(main, ["bench", "determinism", str(tmp_path), "--qualities", "3,6", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads(out.read_text())["summary"]
    assert summary["cases"] == 2
    assert summary["identical"] == {"version3_same_latent": 2, "torch_2_threads": 2, "int64_reference": 2}
    assert abs(summary["rate_cost_percent"]) < 2.0
    assert summary["version4_vs_3_percent"] < 0  # same latents, fewer bytes
    from lcodec.codec.registry import bundled_levels

    levels = bundled_levels()
    res = CliRunner().invoke(main, ["bench", "determinism", str(tmp_path), "--qualities", str(levels + 1)])
    assert res.exit_code != 0 and f"[1, {levels}]" in res.output
