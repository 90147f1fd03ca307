"""Patch packs: building, size cap, determinism, sampling on the device, corrupt packs, training from one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save as st_save

from lcodec.cli.main import main
from lcodec.codec.errors import InputError
from lcodec.codec.training.patch_pack import PackSampler, build_pack, load_pack


@pytest.fixture(scope="module")
def photos(tmp_path_factory, data_dir) -> Path:
    d = tmp_path_factory.mktemp("photos")
    for p in sorted((data_dir / "train").glob("*.jpg"))[:2]:
        with Image.open(p) as im:
            im.convert("RGB").resize((600, 450)).save(d / p.name, quality=95)
    return d


@pytest.fixture(scope="module")
def pack(photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "p.lcp"
    build_pack(photos, out, side=96, max_mb=0.4, seed=3)
    return out


def test_pack_is_capped_deterministic_and_lossless_shaped(pack, photos, tmp_path):
    assert pack.stat().st_size <= 0.4 * 2**20
    patches, meta = load_pack(pack)
    assert patches.dtype == torch.uint8 and patches.shape[1:] == (3, 96, 96)
    assert patches.shape[0] == int(meta["count"]) > 10
    assert meta["format"] == "lcodec-patch-pack" and meta["version"] == "1" and meta["image_format"] == "webp"
    assert meta["seed"] == "3" and meta["side"] == "96" and meta["source"] == str(photos)
    again = tmp_path / "again.lcp"
    build_pack(photos, again, side=96, max_mb=0.4, seed=3)
    assert again.read_bytes() == pack.read_bytes()  # same seed: the same file, byte for byte
    # a cap stops adding patches at the cap: half the cap, about half the patches, and the same first ones
    half = tmp_path / "half.lcp"
    build_pack(photos, half, side=96, max_mb=0.2, seed=3)
    fewer = load_pack(half)[0]
    assert half.stat().st_size <= 0.2 * 2**20 and len(fewer) < len(patches)
    assert torch.equal(fewer, patches[: len(fewer)])
    other = tmp_path / "other.lcp"
    build_pack(photos, other, side=96, max_mb=0.4, seed=4)
    assert not torch.equal(load_pack(other)[0][:5], patches[:5])


def test_sampler_crops_and_flips_on_the_device(pack):
    s = PackSampler(pack, 64, "cpu", seed=0)
    a, b = s.batch(8), s.batch(8)
    assert a.shape == (8, 3, 64, 64) and a.dtype == torch.float32
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert not torch.equal(a, b)
    # every crop is a (possibly mirrored) window of some stored patch
    x = (a[0] * 255).round().to(torch.uint8)
    found = False
    for p in s.patches:
        for cand in (p, p.flip(-1)):
            for r in range(0, 96 - 64 + 1):
                row = cand[:, r : r + 64]
                for c in range(0, 96 - 64 + 1):
                    if torch.equal(row[:, :, c : c + 64], x):
                        found = True
                        break
                if found:
                    break
            if found:
                break
        if found:
            break
    assert found
    with pytest.raises(InputError, match="larger"):
        PackSampler(pack, 128)


def test_png_patches_are_the_same_pixels(photos, pack, tmp_path):
    png = tmp_path / "png.lcp"
    meta = build_pack(photos, png, side=96, max_mb=0.4, seed=3, image_format="png")
    webp_patches = load_pack(pack)[0]
    png_patches, png_meta = load_pack(png)
    assert png_meta["image_format"] == "png" and meta["bytes"] == png.stat().st_size
    n = min(len(webp_patches), len(png_patches))
    assert n > 5 and torch.equal(png_patches[:n], webp_patches[:n])  # both lossless, same crops


def test_photos_too_small_or_missing_are_clear_errors(photos, tmp_path):
    with pytest.raises(InputError, match="large enough"):
        build_pack(photos, tmp_path / "x.lcp", side=320)  # JPEGs of 600x450 cannot give 2x-downscaled 320s
    with pytest.raises(InputError, match="no images"):
        build_pack(tmp_path, tmp_path / "x.lcp", side=96)
    with pytest.raises(InputError, match="not found"):
        build_pack(tmp_path / "nowhere", tmp_path / "x.lcp", side=96)
    with pytest.raises(InputError, match="too small"):
        build_pack(photos, tmp_path / "x.lcp", side=96, max_mb=0.001)
    assert not (tmp_path / "x.lcp").exists()


def test_corrupt_or_foreign_pack_is_a_clear_error(pack, tmp_path):
    bad = tmp_path / "bad.lcp"
    bad.write_bytes(b"not a pack at all")
    with pytest.raises(InputError, match="not an lcodec patch pack"):
        load_pack(bad)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt"):
        load_pack(bad)
    with pytest.raises(InputError, match="not found"):
        load_pack(tmp_path / "missing.lcp")
    # a foreign safetensors file (e.g. weights), then packs with lying metadata or tensors
    foreign = tmp_path / "weights.lcp"
    foreign.write_bytes(st_save({"w": torch.zeros(4)}, metadata={"name": "x"}))
    with pytest.raises(InputError, match="not an lcodec patch pack"):
        load_pack(foreign)
    good = {"images": torch.zeros(30, dtype=torch.uint8), "offsets": torch.tensor([0, 10, 30])}
    meta = {"format": "lcodec-patch-pack", "version": "1", "side": "96", "count": "2"}
    for tensors, m, msg in (
        (good, {**meta, "version": "9"}, "version"),
        (good, {**meta, "side": "100000"}, "corrupt"),
        (good, {**meta, "count": "5"}, "corrupt"),
        (good, {**meta, "side": "x"}, "corrupt"),
        ({**good, "offsets": torch.tensor([0, 20, 10, 30])}, {**meta, "count": "3"}, "corrupt"),
        ({**good, "offsets": good["offsets"].int()}, meta, "corrupt"),
        (good, meta, "corrupt \\(patch 0\\)"),  # zeros are no image
    ):
        bad.write_bytes(st_save(tensors, metadata=m))
        with pytest.raises(InputError, match=msg):
            load_pack(bad)


def test_cli_pack_then_train_from_it_and_resume(photos, tmp_path):
    r = CliRunner()
    out = tmp_path / "t.lcp"
    res = r.invoke(main, ["pack-patches", "--data", str(photos), "-o", str(out), "--patch", "96", "--max-mb", "0.3"])
    assert res.exit_code == 0, res.output
    assert "patches of 96x96" in res.output and out.stat().st_size <= 0.3 * 2**20
    before = out.read_bytes()
    res = r.invoke(main, ["pack-patches", "--data", str(photos), "-o", str(out), "--patch", "96", "--seed", "1"])
    assert res.exit_code == 5 and "--force" in res.output and out.read_bytes() == before
    res = r.invoke(main, ["pack-patches", "--data", str(photos), "-o", str(out), "--side", "96", "--max-mb", "0.3",
                          "--seed", "1", "-f"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() != before and not list(tmp_path.glob(".t.lcp*"))
    res = r.invoke(main, ["pack-patches", "--data", str(tmp_path / "none"), "-o", str(tmp_path / "x.lcp")])
    assert res.exit_code == 2 and "folder not found" in res.output
    (tmp_path / "empty").mkdir()
    res = r.invoke(main, ["pack-patches", "--data", str(tmp_path / "empty"), "-o", str(tmp_path / "x.lcp")])
    assert res.exit_code == 2 and "no images" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.lcp").exists()
    run = tmp_path / "run"
    args = ["train", "--data", str(out), "--out", str(run), "--batch", "2", "--patch", "64", "--warmup", "1"]
    res = r.invoke(main, [*args, "--steps", "2"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, [*args, "--steps", "3"])
    assert res.exit_code == 0, res.output
    from lcodec.codec.training.loop import load_checkpoint

    assert load_checkpoint(run / "last.pt")["step"] == 3
    assert json.loads((run / "config.json").read_text())["data"].endswith(".lcp")
    res = r.invoke(main, ["train", "--data", str(tmp_path / "missing.lcp"), "--out", str(run)])
    assert res.exit_code == 2 and "not found" in res.output
    junk = tmp_path / "junk.bin"  # any file is taken for a pack, and refused as one
    junk.write_bytes(b"junk")
    res = r.invoke(main, ["train", "--data", str(junk), "--out", str(tmp_path / "run3"), *args[5:], "--steps", "1"])
    assert res.exit_code == 2 and "not an lcodec patch pack" in res.output


def test_bench_train_speed_reports_images_per_second(pack, tmp_path):
    out = tmp_path / "s.json"
    res = CliRunner().invoke(main, ["bench", "train-speed", "--patch", "64", "--batch", "2", "--steps", "1",
                                    "--pack", str(pack), "--out", str(out)])
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text())["rows"][0]
    assert row["images_per_s"] > 0 and row["batch"] == 2 and row["data"] == "pack"
    assert {"device", "torch", "threads", "patch", "ms_per_step", "peak_mb"} <= set(row)


def test_bench_train_speed_data_time_and_errors(pack, photos, tmp_path):
    out = tmp_path / "d.json"
    res = CliRunner().invoke(main, ["bench", "train-speed", "--patch", "64", "--batch", "2,3", "--data-only",
                                    "--pack", str(pack), "--data-time", str(photos), "--out", str(out)])
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    assert got["rows"] == [] and set(got["data_time"]) == {"folder", "pack"}
    assert got["data_time"]["pack"]["batch"] == 3 and got["data_time"]["folder"]["ms_per_batch"] > 0
    res = CliRunner().invoke(main, ["bench", "train-speed", "--batch", "2,x"])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["bench", "train-speed", "--data-only"])
    assert res.exit_code == 2
    bad = tmp_path / "bad.lcp"
    bad.write_bytes(b"nothing")
    res = CliRunner().invoke(main, ["bench", "train-speed", "--data-only", "--pack", str(bad)])
    assert res.exit_code == 2 and "not an lcodec patch pack" in res.output
    res = CliRunner().invoke(main, ["bench", "train-speed", "--device", "tpu"])
    assert res.exit_code == 2 and "unknown device 'tpu'" in res.output


def test_bench_train_speed_compares_modes_in_turns(tmp_path):
    out = tmp_path / "m.json"
    res = CliRunner().invoke(main, ["bench", "train-speed", "--patch", "64", "--batch", "1", "--steps", "1",
                                    "--warmup", "0", "--modes", "fp32,channels_last", "--rounds", "2",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    rows = got["rows"]
    assert [r["mode"] for r in rows] == ["fp32", "channels_last"] and all(r["rounds"] == 2 for r in rows)
    assert rows[0]["speedup_vs_first_mode"] == 1.0 and rows[1]["channels_last"] and not rows[0]["channels_last"]
    assert got["cpu"] and "cpu_bf16" in got and "best of 2 rounds" in res.output
    res = CliRunner().invoke(main, ["bench", "train-speed", "--modes", "fp32,fp64"])
    assert res.exit_code == 2 and "unknown: fp64" in res.output
