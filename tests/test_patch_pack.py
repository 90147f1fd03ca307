"""Patch packs: building, size cap, determinism, sampling on the device, corrupt packs, training from one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from cli.main import main
from codec.errors import InputError
from codec.training.patch_pack import PackSampler, build_pack, load_pack


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
    again = tmp_path / "again.lcp"
    build_pack(photos, again, side=96, max_mb=0.4, seed=3)
    same, same_meta = load_pack(again)
    assert torch.equal(same, patches) and same_meta == meta
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


def test_cli_pack_then_train_from_it_and_resume(photos, tmp_path):
    r = CliRunner()
    out = tmp_path / "t.lcp"
    res = r.invoke(main, ["pack-patches", "--data", str(photos), "-o", str(out), "--side", "96", "--max-mb", "0.3"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["pack-patches", "--data", str(photos), "-o", str(out), "--side", "96"])
    assert res.exit_code == 5
    res = r.invoke(main, ["pack-patches", "--data", str(tmp_path / "none"), "-o", str(tmp_path / "x.lcp")])
    assert res.exit_code == 2
    run = tmp_path / "run"
    args = ["train", "--data", str(out), "--out", str(run), "--batch", "2", "--patch", "64", "--warmup", "1"]
    res = r.invoke(main, [*args, "--steps", "2"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, [*args, "--steps", "3"])
    assert res.exit_code == 0, res.output
    from codec.training.loop import load_checkpoint

    assert load_checkpoint(run / "last.pt")["step"] == 3
    assert json.loads((run / "config.json").read_text())["data"].endswith(".lcp")
    res = r.invoke(main, ["train", "--data", str(tmp_path / "missing.lcp"), "--out", str(run)])
    assert res.exit_code == 2 and "not found" in res.output


def test_bench_train_speed_reports_images_per_second(pack, tmp_path):
    out = tmp_path / "s.json"
    res = CliRunner().invoke(main, ["bench", "train-speed", "--patch", "64", "--batch", "2", "--steps", "1",
                                    "--pack", str(pack), "--out", str(out)])
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text())["rows"][0]
    assert row["images_per_s"] > 0 and row["batch"] == 2 and row["data"] == "pack"
