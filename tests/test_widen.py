"""Widening the bundled weights to a wider architecture: same output at the start, then trainable."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from lcodec.cli.main import main
from lcodec.codec import ImageCodec
from lcodec.codec.image_model import ImageModel, ModelConfig
from lcodec.codec.registry import bundled_paths, load_weights_file
from lcodec.codec.training.widen import widen_state


def _learned(path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The weights of a file (float, no tables) and their architecture."""
    state, meta = load_weights_file(path)
    config = ModelConfig.from_dict(json.loads(meta["config"]))
    return {k: v.float() for k, v in state.items() if not k.endswith("cdf_table")}, config


@functools.lru_cache(maxsize=1)
def _bundled() -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The bundled weights (float, no tables) and their architecture, read once for the module (tests
    only read them)."""
    return _learned(bundled_paths()["default"])


BASE = _bundled()[1]
WIDER = [f"n={BASE.n + 32}", f"n={BASE.n + 16},m={BASE.m + BASE.m // BASE.slices},slices={BASE.slices + 1}"]


@pytest.mark.parametrize("arch", WIDER)
def test_widened_model_reconstructs_exactly_as_the_narrow_one(eval_images, arch):
    state, base = _bundled()
    narrow = ImageModel(base)
    narrow.load_state_dict(state, strict=False)
    config = base.updated(arch)
    torch.manual_seed(0)
    wide = ImageModel(config)
    wide.load_state_dict(widen_state(wide, state), strict=False)
    with Image.open(eval_images[2]) as im:
        rgb = np.asarray(im.convert("RGB"))[:128, :192].copy()
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)[None]
    q = torch.tensor([6.0])
    with torch.no_grad():
        a, b = narrow.eval()(x, q, table_scales=False), wide.eval()(x, q, table_scales=False)
    # equal up to float summation order (wider convolutions block their sums differently)
    torch.testing.assert_close(a["x_hat"], b["x_hat"], atol=1e-5, rtol=0)
    torch.testing.assert_close(a["y_likelihoods"], b["y_likelihoods"][:, :base.m], atol=1e-5, rtol=1e-4)
    # new latent channels are ignored by g_s at first; new hidden channels are live, so training moves them
    if config.m > base.m:
        assert wide.g_s.net[0].weight[base.m:, :base.n].abs().sum() == 0  # ConvTranspose2d: [in, out, k, k]
    assert wide.g_a.net[0].weight[base.n:].abs().sum() > 0


def test_narrowing_and_bad_specs_are_refused():
    with pytest.raises(ValueError, match="does not fit"):
        wide = ImageModel(ModelConfig(n=128))
        widen_state(ImageModel(ModelConfig(n=64)), wide.state_dict())
    for spec, msg in (("n=0", "positive"), ("width=3", "KEY=VALUE"), ("m=171", "slices"), ("n=x", "integer")):
        with pytest.raises(ValueError, match=msg):
            ModelConfig().updated(spec)


def test_train_widened_from_bundled_weights_exports_a_working_model(tmp_path, tiny_data):
    d = tiny_data
    run, weights = tmp_path / "run", tmp_path / "wide.lcw"
    common = ["train", "--data", str(d), "--out", str(run), "--batch", "2", "--patch", "64", "--warmup", "1",
              "--init", "default"]  # a bundled model by name
    r = CliRunner()
    res = r.invoke(main, [*common, "--steps", "1", "--arch", f"n={BASE.n + 16}"])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "config.json").read_text())["model"]["n"] == BASE.n + 16
    # resuming with another architecture is a clear error, without one it keeps the run's
    res = r.invoke(main, [*common, "--steps", "2", "--arch", f"n={BASE.n + 32}"])
    assert res.exit_code != 0 and "architecture" in res.output and "Traceback" not in res.output
    res = r.invoke(main, [*common, "--steps", "2"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["export", str(run / "last.pt"), "-o", str(weights)])
    assert res.exit_code == 0, res.output
    codec = ImageCodec.from_model(str(weights))
    assert codec.model.config.n == BASE.n + 16
    img = Image.fromarray((np.random.default_rng(1).random((48, 80, 3)) * 255).astype(np.uint8))
    assert codec.decode(codec.encode(img, 5)).size == (80, 48)
    res = r.invoke(main, [*common[:3], "--out", str(tmp_path / "bad"), "--arch", "slices=7"])
    assert res.exit_code == 2 and "--arch" in res.output


def test_added_quality_levels_keep_the_old_ones_and_extend_the_gain_ladder(eight_level_weights):
    # start from the first 8 levels (the bundled model has all 12 rungs of the ladder)
    state, base = _learned(eight_level_weights)
    config = base.updated(f"levels={base.levels + 4}")
    wide = ImageModel(config)
    wide.load_state_dict(widen_state(wide, state), strict=False)
    old = state["gain.log_gain"]
    new = wide.gain.log_gain.detach()
    assert new.shape == (base.levels + 4, base.m)
    assert torch.equal(new[: base.levels], old)  # the trained levels code exactly as before
    step = old[-1] - old[-2]
    torch.testing.assert_close(new[-1], old[-1] + 4 * step)
    torch.testing.assert_close(wide.gain.log_inv_gain.detach()[-1],
                               state["gain.log_inv_gain"][-1] + 4 * (state["gain.log_inv_gain"][-1]
                                                                     - state["gain.log_inv_gain"][-2]))
    for spec in ("levels=1", "levels=13"):
        with pytest.raises(ValueError, match="levels"):
            base.updated(spec)


def test_model_with_more_levels_codes_the_new_qualities(tmp_path, tiny_data, eight_level_weights):
    from lcodec.codec.errors import QualityError

    run, weights = tmp_path / "run", tmp_path / "ten.lcw"
    r = CliRunner()
    res = r.invoke(main, ["train", "--data", str(tiny_data), "--out", str(run), "--batch", "2", "--patch", "64",
                          "--warmup", "1", "--init", str(eight_level_weights), "--steps", "1",
                          "--arch", "levels=10"])
    assert res.exit_code == 0, res.output
    assert r.invoke(main, ["export", str(run / "last.pt"), "-o", str(weights)]).exit_code == 0
    codec = ImageCodec.from_model(str(weights))
    assert codec.max_quality == 10.0
    img = Image.fromarray((np.random.default_rng(2).random((40, 72, 3)) * 255).astype(np.uint8))
    blobs = {q: codec.encode(img, q) for q in (8, 10)}
    assert len(blobs[10]) > len(blobs[8])  # the extrapolated levels spend more bits
    assert codec.decode(blobs[10]).size == (72, 40) and ImageCodec.info(blobs[10])["quality"] == 10
    # the model it grew from has 8 levels: quality 10 is a clean error
    with pytest.raises(QualityError, match="between 1 and 8"):
        ImageCodec.from_model(str(eight_level_weights)).encode(img, 10)
    src, out = tmp_path / "a.png", tmp_path / "a.lcd"
    img.save(src)
    for q in ("9", "13"):  # above the model's levels, or above the whole ladder: the model's own range
        res = r.invoke(main, ["encode", str(src), "-o", str(out), "-q", q, "--model", str(eight_level_weights)])
        assert res.exit_code == 2 and "between 1 and 8" in res.output and "Traceback" not in res.output
    res = r.invoke(main, ["encode", str(src), "-o", str(out), "-q", "0.5"])
    assert res.exit_code == 2 and "at least 1" in res.output and not out.exists()


def test_synthesis_blocks_added_to_trained_weights_start_as_the_identity(eval_images):
    state, base = _bundled()
    plain = ImageModel(base)
    plain.load_state_dict(state, strict=False)
    config = base.updated("gs_blocks=1")
    torch.manual_seed(0)
    deep = ImageModel(config)
    deep.load_state_dict(widen_state(deep, state), strict=False)
    assert len(deep.g_s.blocks) == 3 and sum(p.numel() for p in deep.g_s.blocks.parameters()) > 0
    with Image.open(eval_images[1]) as im:
        rgb = np.asarray(im.convert("RGB"))[:128, :128].copy()
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)[None]
    q = torch.tensor([9.0])
    with torch.no_grad():
        a, b = plain.eval()(x, q), deep.eval()(x, q)
    assert torch.equal(a["x_hat"], b["x_hat"])  # zero last convolutions: the blocks add exactly nothing
    # ... and they train: the zero convolution gets a gradient at once
    deep.train()
    loss = ((deep(x, q)["x_hat"] - x) ** 2).mean()
    loss.backward()
    assert deep.g_s.blocks[0][0].body[-1].weight.grad.abs().sum() > 0


def test_gs_blocks_may_be_zero_but_not_negative():
    assert BASE.updated("gs_blocks=0").gs_blocks == 0
    with pytest.raises(ValueError, match="at least 0"):
        BASE.updated("gs_blocks=-1")
    with pytest.raises(ValueError, match="positive"):
        BASE.updated("n=0")
    # weights files written before the field existed load as the plain transform
    assert ModelConfig.from_dict({k: v for k, v in BASE.to_dict().items() if k != "gs_blocks"}).gs_blocks == 0


def test_gs_blocks_are_capped_by_the_tile_margin():
    from lcodec.codec.image_model import MAX_GS_BLOCKS

    assert BASE.updated(f"gs_blocks={MAX_GS_BLOCKS}").gs_blocks == MAX_GS_BLOCKS
    with pytest.raises(ValueError, match="margin"):
        BASE.updated(f"gs_blocks={MAX_GS_BLOCKS + 1}")


def test_named_architectures_and_the_default_of_a_new_run():
    from lcodec.codec.image_model import ARCHITECTURES, ModelConfig, architecture
    from lcodec.codec.registry import bundled_paths, config_of, read_weights_metadata
    from lcodec.codec.training.loop import TrainConfig, resolve_architecture

    bundled = config_of(read_weights_metadata(bundled_paths()["default"]))
    assert ARCHITECTURES["default"] == bundled  # a new run trains what ships
    assert resolve_architecture(TrainConfig(data="", out=""), None, None) == bundled.to_dict()
    assert architecture("small", bundled) == ARCHITECTURES["small"]
    assert architecture("small,levels=4", bundled).levels == 4 and architecture("small,levels=4", bundled).n == 96
    assert architecture("n=192", bundled) == ModelConfig(**{**bundled.to_dict(), "n": 192})
    with pytest.raises(ValueError, match="unknown architecture 'huge'"):
        architecture("huge", bundled)
