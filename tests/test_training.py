"""Training smoke test: a few real steps, resume, export, and the exported weights coding an image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from lcodec.cli.main import main
from lcodec.codec import ImageCodec
from lcodec.codec.registry import bundled_paths, load_weights_file

TINY = ["--steps", "3", "--batch", "2", "--patch", "64", "--warmup", "1", "--val-every", "3",
        "--val-images", "1"]


def test_train_resume_export_encode(tmp_path, tiny_data):
    r = CliRunner()
    run = tmp_path / "run"
    res = r.invoke(main, ["train", "--data", str(tiny_data), "--val", str(tiny_data), "--out", str(run), *TINY])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    val = [row for row in rows if row["kind"] == "val"]
    assert val and "q4_bpp" in val[-1] and "ema_q4_bpp" in val[-1]
    gap = val[-1]  # same photos for training and validation here: no gap at all
    assert gap["loss_gap_q4"] == pytest.approx(0.0, abs=1e-3) and gap["train_loss_q4"] > 0
    assert "loss gap (validation - training patches)" in res.output
    # resume: more steps continue from step 3
    res = r.invoke(main, ["train", "--data", str(tiny_data), "--out", str(run), *TINY[:-6], "--steps", "5"])
    assert res.exit_code == 0, res.output
    from lcodec.codec.training.loop import load_checkpoint

    assert load_checkpoint(run / "last.pt")["step"] == 5
    weights = tmp_path / "tiny.lcw"
    res = r.invoke(main, ["export", str(run / "last.pt"), "-o", str(weights)])
    assert res.exit_code == 0, res.output
    state, meta = load_weights_file(weights)
    assert meta["name"] == "tiny" and not any("optimizer" in k for k in state)
    codec = ImageCodec.from_model(str(weights))
    img = Image.fromarray((np.random.default_rng(0).random((40, 70, 3)) * 255).astype(np.uint8))
    blob = codec.encode(img, 3)
    assert codec.decode(blob).size == (70, 40)
    # the CLI finds non-bundled weights only when told where they are
    (tmp_path / "t.lcd").write_bytes(blob)
    res = r.invoke(main, ["decode", str(tmp_path / "t.lcd"), "-o", str(tmp_path / "t.png")])
    assert res.exit_code == 4
    res = r.invoke(main, ["decode", str(tmp_path / "t.lcd"), "-o", str(tmp_path / "t.png"), "--model", str(weights)])
    assert res.exit_code == 0, res.output
    # a new run starts from the exported weights (which carry the coder's CDF tables)
    res = r.invoke(main, ["train", "--data", str(tiny_data), "--out", str(tmp_path / "run2"), *TINY[:-6],
                          "--steps", "1", "--init", str(weights)])
    assert res.exit_code == 0, res.output
    assert load_checkpoint(tmp_path / "run2" / "last.pt")["step"] == 1


def test_export_rejects_non_checkpoint(tmp_path):
    import io
    import zipfile

    saved = io.BytesIO()
    torch.save({"model": {"w": torch.ones(3)}, "step": 1, "config": {}}, saved)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", "not torch")
    listed = io.BytesIO()
    torch.save([1, 2, 3], listed)
    contents = {"text": b"not a checkpoint", "short": b"hi\n", "noise": np.random.default_rng(0).bytes(4096),
                "truncated": saved.getvalue()[: len(saved.getvalue()) // 2], "zip": archive.getvalue(),
                "list": listed.getvalue(), "no-architecture": saved.getvalue()}
    for name, data in contents.items():
        bad = tmp_path / f"{name}.pt"
        bad.write_bytes(data)
        res = CliRunner().invoke(main, ["export", str(bad), "-o", str(tmp_path / "x.lcw")])
        assert res.exit_code == 2 and not (tmp_path / "x.lcw").exists(), (name, res.output)
        assert "checkpoint" in res.output and "Traceback" not in res.output, (name, res.output)


def test_unreadable_training_photo_is_a_clean_error(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"not a jpeg")
    res = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "photos"), "--out", str(tmp_path / "run"),
                                    "--steps", "1", "--patch", "64", "--batch", "1"])
    assert res.exit_code == 2 and "cannot read training photo" in res.output and "Traceback" not in res.output


def test_msssim_training_step(tmp_path, tiny_data):
    pytest.importorskip("pytorch_msssim")
    res = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--out", str(tmp_path / "ms"), "--steps", "1",
                                    "--batch", "1", "--patch", "192", "--metric", "ms-ssim", "--warmup", "1"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (tmp_path / "ms" / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 1 and np.isfinite(rows[-1]["loss"])


def test_ms_ssim_needs_large_patches(tmp_path, tiny_data):
    res = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--out", str(tmp_path / "x"),
                                    "--patch", "64", "--metric", "ms-ssim"])
    assert res.exit_code == 2 and "192" in res.output


def _train_rows(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r["kind"] == "train"]


def test_log_rows_average_the_steps_since_the_last_row(tmp_path, tiny_data, capsys):
    """Metrics stay on the device between log rows; a row holds their means over its steps."""
    from lcodec.codec.training.loop import TrainConfig, train

    common = dict(data=str(tiny_data), steps=7, batch=1, patch=64, warmup=1, device="cpu", val_every=0)
    train(TrainConfig(out=str(tmp_path / "every"), log_every=1, **common), progress=False)
    train(TrainConfig(out=str(tmp_path / "three"), log_every=3, **common), progress=False)
    every, three = _train_rows(tmp_path / "every"), _train_rows(tmp_path / "three")
    assert [r["step"] for r in every] == list(range(1, 8)) and [r["step"] for r in three] == [3, 6, 7]
    for row, window in zip(three, (every[0:3], every[3:6], every[6:7])):
        for key in ("loss", "bpp", "psnr", "grad_norm"):
            mean = sum(r[key] for r in window) / len(window)
            assert row[key] == pytest.approx(mean, rel=1e-3, abs=1e-3), key


def test_configs_of_older_checkpoints_still_load():
    """Fields added to TrainConfig have defaults; a stored config from before them loads."""
    from lcodec.codec.training.loop import TrainConfig, config_from_dict

    old = {"data": "d", "out": "o", "val": None, "steps": 6200, "batch": 8, "patch": 128, "lr": 3e-4,
           "min_lr": 1e-5, "warmup": 200, "weight_decay": 0.0, "clip": 1.0, "gain_lr_scale": 20.0, "metric": "mse",
           "device": "auto", "seed": 0, "val_every": 1000, "val_images": 2, "ckpt_minutes": 4, "time_limit": 52,
           "init": None, "model": {"n": 96, "m": 160, "nz": 96, "hyper": 128, "slices": 5, "hidden": 128}}
    cfg = TrainConfig(**old)
    assert cfg.compile is False and cfg.log_every == 10
    assert config_from_dict({**old, "retired_option": 1}) == cfg


def test_load_learned_reports_what_does_not_fit():
    from lcodec.codec.registry import load_learned

    net = torch.nn.Linear(3, 2)
    good = {"weight": torch.ones(2, 3), "bias": torch.zeros(2), "z_prior.cdf_table": torch.zeros(4, 5)}
    assert load_learned(net, good) == []
    assert torch.equal(net.weight, torch.ones(2, 3))
    assert load_learned(net, {"weight": torch.ones(2, 3)}) == ["missing bias"]
    assert load_learned(net, {**good, "extra": torch.ones(1)}) == ["unexpected extra"]
    wrong = load_learned(net, {"weight": torch.ones(4, 3), "bias": torch.zeros(2)})
    assert len(wrong) == 1 and "weight" in wrong[0] and "size" in wrong[0]


def test_weights_metadata_from_the_header_alone(tmp_path):
    from lcodec.codec.errors import InputError
    from lcodec.codec.registry import bundled_paths, read_weights_metadata
    from lcodec.codec.training.loop import init_architecture

    path = bundled_paths()["default"]
    full = load_weights_file(path)[1]
    assert read_weights_metadata(path) == full
    # fields added after the weights were exported (`levels` once, `gs_blocks` now) get their defaults
    assert init_architecture("default").to_dict() == {"levels": 8, "gs_blocks": 0, **json.loads(full["config"])}
    # the header is all it reads: a file cut just after it still gives the metadata ...
    data = path.read_bytes()
    cut = tmp_path / "cut.lcw"
    cut.write_bytes(data[: 8 + int.from_bytes(data[:8], "little") + 10])
    assert read_weights_metadata(cut) == full
    with pytest.raises(InputError, match="not an lcodec weights file"):
        load_weights_file(cut)  # ... which loading the tensors refuses
    for name, content in {"text.lcw": b"hello, not weights at all", "short.lcw": b"\x05\x00",
                          "huge-header.lcw": (10**9).to_bytes(8, "little") + b"{}",
                          "list.lcw": (2).to_bytes(8, "little") + b"[]"}.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError, match="not an lcodec weights file"):
            read_weights_metadata(tmp_path / name)
    video = bundled_paths()["default"].with_suffix(".lcv")
    with pytest.raises(InputError, match="format 'lcodec-video-weights-1'"):
        read_weights_metadata(video)


def test_weights_bytes_do_not_depend_on_the_metadata_order():
    from lcodec.codec.registry import parse_weights, weights_bytes

    state = {"b": torch.arange(6, dtype=torch.float16).view(2, 3), "a": torch.ones(4, dtype=torch.int32)}
    meta = {"name": "x", "format": "lcodec-weights-1", "info": "{}", "config": "{}"}
    data = weights_bytes(state, meta)
    assert data == weights_bytes(state, dict(reversed(list(meta.items()))))
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0 and data[8:].startswith(b'{"__metadata__":{"config":"{}","format":"lcodec-weights-1",'
                                              b'"info":"{}","name":"x"},')
    tensors, read_meta = parse_weights(data, "test")
    assert read_meta == meta and all(torch.equal(tensors[k], v) for k, v in state.items())


def test_quality_bias_skews_training_towards_low_levels():
    from lcodec.codec.quality import QUALITY_MIN
    from lcodec.codec.training.loop import sample_qualities

    QUALITY_MAX = 8.0  # the default model's levels  # noqa: N806
    # bias 1 draws exactly the sequence uniform sampling always drew (resumed runs stay reproducible)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    levels = torch.randint(0, 8, (64,), generator=g2).float() + QUALITY_MIN
    cont = torch.rand(64, generator=g2) * (QUALITY_MAX - QUALITY_MIN) + QUALITY_MIN
    pick = torch.rand(64, generator=g2) < 0.5
    assert torch.equal(sample_qualities(64, g1), torch.where(pick, levels, cont))

    uniform = sample_qualities(40_000, torch.Generator().manual_seed(0))
    skewed = sample_qualities(40_000, torch.Generator().manual_seed(0), bias=1.4)
    assert skewed.min() >= QUALITY_MIN and skewed.max() <= QUALITY_MAX
    assert (skewed == skewed.round()).float().mean() > 0.45  # still half at integer levels
    assert set(skewed[skewed == skewed.round()].tolist()) == set(range(1, 9))  # every level still drawn
    assert skewed.mean() < uniform.mean() - 0.4
    assert (skewed < 2).float().mean() > 1.5 * (uniform < 2).float().mean()

    # a model with more levels draws all of them, and nothing above its top
    wide = sample_qualities(40_000, torch.Generator().manual_seed(0), bias=1.4, levels=12)
    assert wide.max() <= 12 and set(wide[wide == wide.round()].tolist()) == set(range(1, 13))


def test_quality_bias_option_is_range_checked(tmp_path, tiny_data):
    res = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--out", str(tmp_path / "r"),
                                    "--quality-bias", "0"])
    assert res.exit_code == 2 and "--quality-bias" in res.output


def test_level_weight_evens_out_the_levels_say_without_changing_the_logged_loss():
    from lcodec.codec.quality import lambda_for
    from lcodec.codec.training.loop import rd_loss

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=gen)
    out = {"x_hat": x + 0.01 * torch.randn(2, 3, 16, 16, generator=gen),
           "y_likelihoods": torch.full((2, 8, 4, 4), 0.25), "z_likelihoods": torch.full((2, 4, 1, 1), 0.5)}
    q = torch.tensor([1.0, 12.0])
    plain = rd_loss(out, x, q)
    weighted = rd_loss(out, x, q, level_weight=0.5)
    assert torch.equal(plain["objective"], plain["loss"])
    assert torch.equal(weighted["loss"], plain["loss"])  # logs stay comparable across runs
    mse = ((out["x_hat"] - x) ** 2).flatten(1).mean(1)
    lam = lambda_for(q)
    per_sample = lam * 255.0**2 * mse + (8 * 16 * 2 + 4 * 1) / (16 * 16)
    expected = (per_sample * (lam / lam[0]) ** -0.5).mean()
    assert torch.allclose(weighted["objective"], expected, rtol=1e-5)
    # the top level's share of the objective shrinks by (lambda_12 / lambda_1)**0.5, about 29x
    share = per_sample[1] / per_sample.sum()
    w_share = per_sample[1] * (lam[1] / lam[0]) ** -0.5 / expected / 2
    assert w_share < share / 2


def test_level_weight_option_is_range_checked(tmp_path, tiny_data):
    res = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--out", str(tmp_path / "r"),
                                    "--level-weight", "2"])
    assert res.exit_code == 2 and "--level-weight" in res.output


@pytest.mark.parametrize("part", ["g_s", "g_s.blocks"])
def test_train_only_changes_only_the_named_part(tmp_path, tiny_data, part):
    """Training only g_s (or only its added blocks) leaves every other tensor, and so every latent and
    every file's bits, as --init had them."""
    from lcodec.codec.training.loop import load_checkpoint

    res = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--out", str(tmp_path / "run"), "--steps", "2",
                                    "--batch", "1", "--patch", "64", "--warmup", "1", "--lr", "1e-3",
                                    "--init", "default", "--arch", "gs_blocks=1", "--train-only", part])
    assert res.exit_code == 0, res.output
    trained = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    init, _ = load_weights_file(bundled_paths()["default"])
    moved = {k for k, v in trained.items() if not k.endswith("cdf_table")
             and (k not in init or not torch.equal(init[k].float(), v.float()))}
    assert all(k.startswith(part + ".") for k in moved), sorted(moved)[:5]
    # the blocks' last convolutions start at zero; training moved them (and g_s's own weights if named)
    assert trained["g_s.blocks.0.0.body.4.weight"].abs().sum() > 0
    assert ("g_s.net.0.weight" in moved) == (part == "g_s")


@pytest.mark.parametrize("args, message", [
    (["--train-only", "g_s,decoder", "--init", "default"], "--train-only takes parts among"),
    (["--train-only", ",", "--init", "default"], "--train-only takes parts among"),
    (["--train-only", "g_s"], "needs --init"),
])
def test_train_only_option_is_checked(tmp_path, tiny_data, args, message):
    res = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--out", str(tmp_path / "run"), "--steps", "1",
                                    "--batch", "1", "--patch", "64", *args])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output


def test_ema_is_checkpointed_resumed_exactly_and_exported_by_default(tmp_path, tiny_data):
    """The weights' moving average follows the raw weights, continues from the checkpoint's average on
    resume, and is what `export` writes unless --raw."""
    from lcodec.codec.training.ema import averaged_state
    from lcodec.codec.training.loop import TrainConfig, load_checkpoint, train

    common = dict(data=str(tiny_data), batch=1, patch=64, warmup=1, device="cpu", val_every=0, lr=1e-3,
                  ema_decay=0.5, seed=3)
    train(TrainConfig(out=str(tmp_path / "straight"), steps=2, **common), progress=False)
    e2 = load_checkpoint(tmp_path / "straight" / "last.pt")["ema"]
    train(TrainConfig(out=str(tmp_path / "straight"), steps=3, **common), progress=False)
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    assert set(a["ema"]) == {n for n, p in a["model"].items() if n in e2} and len(a["ema"]) > 100
    for n in a["ema"]:  # one resumed step: average = decay * saved average + (1 - decay) * new weights
        assert torch.allclose(a["ema"][n], 0.5 * e2[n] + 0.5 * a["model"][n].float(), atol=1e-6), n
    moved = [n for n in a["ema"] if not torch.equal(a["ema"][n], a["model"][n].float())]
    assert moved  # with decay 0.5 the average lags the raw weights
    r = CliRunner()
    res = r.invoke(main, ["export", str(tmp_path / "straight" / "last.pt"), "-o", str(tmp_path / "ema.lcw")])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["export", str(tmp_path / "straight" / "last.pt"), "-o", str(tmp_path / "raw.lcw"), "--raw"])
    assert res.exit_code == 0, res.output
    ema_w, ema_meta = load_weights_file(tmp_path / "ema.lcw")
    raw_w, _ = load_weights_file(tmp_path / "raw.lcw")
    stored = ema_w[moved[0]].dtype  # weights files keep the learned tensors in their stored precision
    assert all(torch.equal(ema_w[n], averaged_state(a)[n].to(stored)) for n in moved)
    assert all(torch.equal(raw_w[n], a["model"][n].to(stored)) for n in moved)
    assert any(not torch.equal(ema_w[n], raw_w[n]) for n in moved)
    assert json.loads(ema_meta["info"])["weights"] == "ema"


def test_training_without_ema_and_a_checkpoint_without_one(tmp_path, tiny_data, capsys):
    from lcodec.codec.training.loop import TrainConfig, load_checkpoint, train

    common = dict(data=str(tiny_data), batch=1, patch=64, warmup=1, device="cpu", val_every=0)
    train(TrainConfig(out=str(tmp_path / "r"), steps=1, ema_decay=0.0, **common), progress=False)
    assert load_checkpoint(tmp_path / "r" / "last.pt")["ema"] is None
    train(TrainConfig(out=str(tmp_path / "r"), steps=2, **common), progress=False)  # resumed with EMA on
    assert "has no EMA weights" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "r" / "last.pt")["ema"]


def test_pause_file_holds_the_loop_until_removed(tmp_path):
    import threading
    import time

    from lcodec.codec.training.loop import wait_while_paused

    assert wait_while_paused(tmp_path) == 0.0
    (tmp_path / "PAUSE").touch()
    threading.Timer(1.5, (tmp_path / "PAUSE").unlink).start()
    t0 = time.time()
    slept = wait_while_paused(tmp_path)
    assert slept >= 1.0 and time.time() - t0 >= 1.0 and not (tmp_path / "PAUSE").exists()


def test_fast_path_uses_bf16_only_where_the_device_computes_it(monkeypatch):
    from lcodec.codec.training import fast_path

    cpu = torch.device("cpu")
    monkeypatch.setattr(fast_path, "cpu_bf16_kind", lambda: None)
    fp = fast_path.choose_fast_path(cpu)
    assert not fp.channels_last and not fp.bf16 and "AVX512-BF16" in fp.describe()
    assert fast_path.choose_fast_path(cpu, channels_last=True).channels_last
    monkeypatch.setattr(fast_path, "cpu_bf16_kind", lambda: "amx")
    fp = fast_path.choose_fast_path(cpu)
    assert fp.bf16 and fp.channels_last and not fast_path.choose_fast_path(cpu, bf16=False).bf16
    assert not fast_path.choose_fast_path(cpu, channels_last=False).channels_last
    assert not fast_path.choose_fast_path(torch.device("meta")).bf16
    x = torch.zeros(1, 3, 8, 8)
    assert fast_path.FastPath(True, False).layout(x).is_contiguous(memory_format=torch.channels_last)


def test_train_prints_what_it_is_about_to_do(tmp_path, tiny_data):
    res = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--out", str(tmp_path / "r"), "--steps", "1",
                                    "--batch", "1", "--patch", "64", "--warmup", "1", "--val-every", "0",
                                    "--no-channels-last"])
    assert res.exit_code == 0, res.output
    assert "device: cpu" in res.output and "contiguous (NCHW)" in res.output
    assert "M parameters" in res.output and "2 photos" in res.output and "EMA decay 0.999" in res.output


@pytest.fixture
def ctrl_c_at_third_step(monkeypatch) -> None:
    """The third training step raises KeyboardInterrupt, as Ctrl-C during it would."""
    from lcodec.codec.training import loop

    calls = {"n": 0}
    real = loop.train_step

    def interrupt_at_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", interrupt_at_third)


def test_an_interrupted_run_keeps_its_steps(tmp_path, tiny_data, ctrl_c_at_third_step):
    """Ctrl-C (or SIGTERM, which the CLI turns into an exception) checkpoints the steps done before it."""
    from lcodec.codec.training import loop

    cfg = loop.TrainConfig(data=str(tiny_data), out=str(tmp_path / "r"), steps=10, batch=1, patch=64, warmup=1,
                           device="cpu", val_every=0, ckpt_minutes=60)
    with pytest.raises(KeyboardInterrupt):
        loop.train(cfg, progress=False)
    assert loop.load_checkpoint(tmp_path / "r" / "last.pt")["step"] == 2


def test_loss_gap_compares_like_with_like(tiny_data):
    """The same patches give no gap; noise, which no model predicts, gives a large one."""
    from lcodec.codec.image_model import ARCHITECTURES, ImageModel
    from lcodec.codec.training.generalisation import fixed_patches, loss_gap

    torch.manual_seed(0)
    model = ImageModel(ARCHITECTURES["small"])
    photos = fixed_patches(str(tiny_data), count=2, side=64)
    assert photos.shape == (2, 3, 64, 64) and torch.equal(photos, fixed_patches(str(tiny_data), count=2, side=64))
    same = loss_gap(model, photos, photos, (1.0, 4.0))
    assert same["loss_gap_q1"] == 0.0 and same["loss_gap_q4"] == 0.0
    noise = torch.rand_like(photos)
    assert loss_gap(model, photos, noise, (4.0,))["loss_gap_q4"] > 0
    assert model.training  # left in the mode it was in


def test_validation_measures_the_files_the_exported_weights_write(tmp_path, tiny_data):
    """Validation codes through ImageCodec: its bpp is a version-4 file's bytes and its PSNR the decoded
    pixels', exactly what the weights `export` writes give (and the training model is left untouched)."""
    import copy

    from lcodec.codec.image_model import ARCHITECTURES, ImageModel
    from lcodec.codec.metrics import psnr
    from lcodec.codec.registry import save_weights
    from lcodec.codec.training.data import list_images
    from lcodec.codec.training.validate import val_qualities, validate

    torch.manual_seed(0)
    model = ImageModel(ARCHITECTURES["small"]).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = validate(model, str(tiny_data), 1, torch.device("cpu"))
    after = model.state_dict()
    assert model.training and before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    exported = copy.deepcopy(model).eval()
    exported.build_tables()
    save_weights(tmp_path / "w.lcw", exported, "default")
    codec = ImageCodec.from_model(tmp_path / "w.lcw")
    with Image.open(list_images(str(tiny_data))[0]) as im:
        rgb = np.asarray(im.convert("RGB"))
    for q in val_qualities(model.config.levels):
        blob = codec.encode(rgb, q)
        assert blob[4] == 4
        assert res[f"q{q:g}_bpp"] == round(8 * len(blob) / (rgb.shape[0] * rgb.shape[1]), 4), q
        assert res[f"q{q:g}_psnr"] == round(psnr(codec.decode(blob), rgb), 3), q


def test_an_interrupted_train_command_says_its_checkpoint_stays(tmp_path, tiny_data, ctrl_c_at_third_step):
    """The CLI's one line after Ctrl-C names the checkpoint the run kept, not 'no output written'."""
    from click.testing import CliRunner

    from lcodec.cli.main import main
    from lcodec.codec.training import loop

    out = tmp_path / "r"
    res = CliRunner().invoke(main, ["train", "--data", str(tiny_data), "--out", str(out), "--steps", "10",
                                    "--batch", "1", "--patch", "64", "--warmup", "1", "--val-every", "0",
                                    "--arch", "small", "--device", "cpu"])
    assert res.exit_code == 130
    text = res.output + (res.stderr if hasattr(res, "stderr") else "")
    assert f"interrupted (checkpoint {out / 'last.pt'} kept; the same command resumes it)" in text
    assert loop.load_checkpoint(out / "last.pt")["step"] == 2
