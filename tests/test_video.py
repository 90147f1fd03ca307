"""Video codec end to end: synthetic clips through the CLI and the Python API, seeking, corruption."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from lcodec.cli.main import main
from lcodec.codec.errors import FormatError, InputError
from lcodec.codec.metrics import psnr
from lcodec.codec.video_codec import VideoCodec
from lcodec.codec.video_container import VideoReader
from lcodec.codec.video_io import FrameSink

ROOT = Path(__file__).resolve().parents[1]
W, H, N = 101, 67, 6  # odd sizes: padding and cropping back must be exact


def _moving_frames(n: int = N, static: bool = False) -> list[np.ndarray]:
    """A real photo crop that pans right by 3 pixels per frame (or stands still)."""
    with Image.open(ROOT / "codec" / "samples" / "flower.png") as im:
        base = np.asarray(im.convert("RGB"))[100 : 100 + H, 100 : 100 + W + 3 * n]
    return [np.ascontiguousarray(base[:, (0 if static else 3 * i) : (0 if static else 3 * i) + W]) for i in range(n)]


def _write_ffv1(path: Path, frames: list[np.ndarray]) -> None:
    """A lossless RGB FFV1 clip at 25 fps, written by the decoder's own sink (so the test input is exact)."""
    sink = FrameSink(path, W, H, Fraction(25), chroma="rgb")
    for f in frames:
        sink.write(f)
    sink.close()


@pytest.fixture(scope="module")
def codec() -> VideoCodec:
    return VideoCodec.default()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    frames = _moving_frames()
    path = tmp_path_factory.mktemp("clip") / "moving.mkv"
    _write_ffv1(path, frames)
    return path, frames


@pytest.fixture(scope="module")
def encoded(clip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("enc") / "moving.lcd"
    res = CliRunner().invoke(main, ["encode", str(clip[0]), "-o", str(out), "-q", "5", "--intra-period", "4"])
    assert res.exit_code == 0, res.output
    return out


def test_cli_round_trip_info_and_quality(encoded, clip, tmp_path):
    r = CliRunner()
    res = r.invoke(main, ["info", str(encoded), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["kind"] == "video" and (info["width"], info["height"], info["frame_count"]) == (W, H, N)
    assert [f["type"] for f in info["frames"]] == ["I", "P", "P", "P", "I", "P"]
    assert sum(f["bytes"] for f in info["frames"]) < info["bytes"] == encoded.stat().st_size
    assert info["frame_rate"] == "25/1"
    res = r.invoke(main, ["decode", str(encoded), "-o", str(tmp_path / "f" / "%03d.png")])
    assert res.exit_code == 0, res.output
    pngs = sorted((tmp_path / "f").glob("*.png"))
    assert len(pngs) == N
    for p, src in zip(pngs, clip[1]):
        dec = np.asarray(Image.open(p))
        assert dec.shape == (H, W, 3)
        assert psnr(dec, src) > 24


def test_cli_aligned_writes_format_6_that_decodes(clip, tmp_path):
    r = CliRunner()
    out = tmp_path / "aligned.lcd"
    res = r.invoke(main, ["encode", str(clip[0]), "-o", str(out), "-q", "5", "--frames", "3", "--aligned"])
    assert res.exit_code == 0, res.output
    info = json.loads(r.invoke(main, ["info", str(out), "--json"]).output)
    assert info["format_version"] == 6 and [f["type"] for f in info["frames"]] == ["I", "P", "P"]
    res = r.invoke(main, ["decode", str(out), "-o", str(tmp_path / "f" / "%03d.png")])
    assert res.exit_code == 0, res.output
    for p, src in zip(sorted((tmp_path / "f").glob("*.png")), clip[1]):
        assert psnr(np.asarray(Image.open(p)), src) > 24
    photo = ROOT / "codec" / "samples" / "flower.png"
    res = r.invoke(main, ["encode", str(photo), "-o", str(tmp_path / "p.lcd"), "--aligned"])
    assert res.exit_code != 0 and "--aligned is for videos" in res.output


def test_y4m_mkv_mp4_outputs(encoded, tmp_path):
    r = CliRunner()
    for name, extra in (("a.y4m", []), ("b.y4m", ["--chroma", "444"]), ("c.mkv", []), ("d.mp4", ["--chroma", "444"])):
        res = r.invoke(main, ["decode", str(encoded), "-o", str(tmp_path / name), *extra])
        assert res.exit_code == 0, res.output
    y4m = (tmp_path / "a.y4m").read_bytes()
    assert y4m.startswith(b"YUV4MPEG2 W101 H67 F25:1") and y4m.count(b"FRAME\n") == N
    # 4:2:0: luma W*H + two chroma planes of ceil(W/2)*ceil(H/2) per frame
    frame_bytes = W * H + 2 * 51 * 34
    assert len(y4m) == y4m.index(b"\n") + 1 + N * (6 + frame_bytes)
    assert (tmp_path / "b.y4m").read_bytes().split(b"\n")[0].endswith(b"C444")
    for name in ("c.mkv", "d.mp4"):
        with av.open(str(tmp_path / name)) as c:
            frames = list(c.decode(video=0))
        assert len(frames) == N and (frames[0].width, frames[0].height) == (W, H)
    # FFV1 in RGB keeps the decoded frames bit-exact
    res = r.invoke(main, ["decode", str(encoded), "-o", str(tmp_path / "e.mkv"), "--chroma", "rgb"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["decode", str(encoded), "-o", str(tmp_path / "f" / "%02d.png")])
    assert res.exit_code == 0, res.output
    with av.open(str(tmp_path / "e.mkv")) as c:
        rgb = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    pngs = sorted((tmp_path / "f").glob("*.png"))
    assert all(np.array_equal(a, np.asarray(Image.open(p))) for a, p in zip(rgb, pngs)) and len(pngs) == N
    res = r.invoke(main, ["decode", str(encoded), "-o", str(tmp_path / "g.y4m"), "--chroma", "rgb"])
    assert res.exit_code == 5
    # existing output needs --force
    res = r.invoke(main, ["decode", str(encoded), "-o", str(tmp_path / "a.y4m")])
    assert res.exit_code == 5 and "exists" in res.output


def test_decoding_is_repeatable_and_seekable(encoded, codec):
    data = encoded.read_bytes()
    first = [f for _, f in codec.decode(io.BytesIO(data))]
    second = [f for _, f in codec.decode(io.BytesIO(data))]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    for k in (0, 3, 4, 5):  # P-frames inside each GOP, and I-frames
        (idx, frame), = list(codec.decode(io.BytesIO(data), first=k, last=k))
        assert idx == k and np.array_equal(frame, first[k])
    with pytest.raises(InputError, match="out of range"):
        list(codec.decode(io.BytesIO(data), first=N))


def test_cli_single_frame(encoded, tmp_path, codec):
    res = CliRunner().invoke(main, ["decode", str(encoded), "-o", str(tmp_path / "f3.png"), "--frame", "3"])
    assert res.exit_code == 0, res.output
    ref = [f for i, f in codec.decode(io.BytesIO(encoded.read_bytes())) if i == 3][0]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "f3.png")), ref)


def test_corrupt_p_frame_is_reported_with_its_index(encoded, tmp_path):
    data = bytearray(encoded.read_bytes())
    reader = VideoReader(io.BytesIO(bytes(data)))
    records = list(reader.records())
    target = records[2]  # a P-frame
    assert target.type_name == "P"
    data[target.offset + 20] ^= 0x10
    bad = tmp_path / "bad.lcd"
    bad.write_bytes(bytes(data))
    res = CliRunner().invoke(main, ["decode", str(bad), "-o", str(tmp_path / "bad.y4m")])
    assert res.exit_code == 3
    assert "frame 2 (P-frame)" in res.output
    assert not (tmp_path / "bad.y4m").exists() and not list(tmp_path.glob(".bad*"))


def test_frame_quality_above_the_models_levels_is_a_format_error(encoded, codec, monkeypatch):
    import dataclasses

    from lcodec.codec.video_container import FrameRecord

    # a well-formed record (valid CRC, same length) claiming quality 9 for a model with 8 levels (a
    # bundled image model with more is made to declare 8: the check reads the model's configuration)
    image_model = codec.images.model
    if image_model.config.levels > 8:
        monkeypatch.setattr(image_model, "config", dataclasses.replace(image_model.config, levels=8))
    data = bytearray(encoded.read_bytes())
    rec = list(VideoReader(io.BytesIO(bytes(data))).records())[2]
    forged = FrameRecord(rec.type, rec.index, 9.0, rec.streams).pack()
    assert len(forged) == rec.nbytes()
    data[rec.offset : rec.offset + len(forged)] = forged
    with pytest.raises(FormatError, match="frame 2: corrupt record .quality 9 above the model's 8 levels"):
        list(codec.decode(io.BytesIO(bytes(data))))


def test_truncated_and_foreign_streams(encoded, tmp_path):
    data = encoded.read_bytes()
    for cut in (3, 20, 60, len(data) // 2, len(data) - 1):
        with pytest.raises(FormatError):
            VideoCodec.info(io.BytesIO(data[:cut]))
    r = CliRunner()
    (tmp_path / "t.lcd").write_bytes(data[: len(data) // 2])
    res = r.invoke(main, ["decode", str(tmp_path / "t.lcd"), "-o", str(tmp_path / "t.y4m")])
    assert res.exit_code == 3 and "Traceback" not in res.output


def test_p_frames_cost_less_than_intra_on_a_static_clip(codec):
    frames = _moving_frames(4, static=True)
    buf = io.BytesIO()
    stats = codec.encode(iter(frames), buf, W, H, quality=4, intra_period=-1)
    assert [s.type for s in stats] == ["I", "P", "P", "P"]
    assert max(s.bytes for s in stats[1:]) < stats[0].bytes


def test_bad_video_inputs(tmp_path, clip):
    r = CliRunner()
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    res = r.invoke(main, ["encode", str(fake), "-o", str(tmp_path / "x.lcd")])
    assert res.exit_code == 2 and "cannot read video" in res.output
    res = r.invoke(main, ["encode", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "x.lcd")])
    assert res.exit_code == 2 and "not found" in res.output
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    res = r.invoke(main, ["encode", str(empty), "-o", str(tmp_path / "x.lcd")])
    assert res.exit_code == 2
    res = r.invoke(main, ["encode", str(clip[0]), "-o", str(tmp_path / "x.lcd"), "--start", "50"])
    assert res.exit_code == 2 and "no frames" in res.output
    assert not (tmp_path / "x.lcd").exists() and not list(tmp_path.glob(".x.lcd*"))
    res = r.invoke(main, ["encode", str(clip[0]), "-o", str(tmp_path / "x.lcd"), "--bpp", "0.5"])
    assert res.exit_code == 2


def test_python_api_streams_frames(codec):
    frames = _moving_frames(3)
    buf = io.BytesIO()
    codec.encode(iter(frames), buf, W, H, quality=3, intra_period=32, rate=Fraction(30000, 1001))
    buf.seek(0)
    info = VideoCodec.info(buf)
    assert info["frame_rate"] == "30000/1001" and info["intra_period"] == 32
    buf.seek(0)
    out = list(codec.decode(buf))
    assert [i for i, _ in out] == [0, 1, 2] and out[0][1].shape == (H, W, 3)


def test_fuzzed_video_streams_end_in_frames_or_documented_errors(codec):
    from lcodec.bench.fuzz_video import fuzz_video

    d = fuzz_video(150, seed=11, codec=codec, time_limit=10.0).to_dict()
    assert d["cases"] == 150 and d["finding_count"] == 0, d["findings"][:3]
    assert d["outcomes"].get("FormatError", 0) > 75


def _tiny_train_video_args(tmp_path: Path, clip) -> list[str]:
    """train-video options for a run folder in `tmp_path` on a folder holding only the test clip."""
    data = tmp_path / "clips"
    data.mkdir()
    (data / "a.mkv").write_bytes(clip[0].read_bytes())
    return ["--data", str(data), "--out", str(tmp_path / "run"), "--batch", "2", "--crop", "4", "--warmup", "1"]


def test_train_video_resume_export_and_use(tmp_path, clip):
    r = CliRunner()
    run = tmp_path / "run"
    tiny = _tiny_train_video_args(tmp_path, clip)
    res = r.invoke(main, ["train-video", *tiny, "--steps", "2"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["train-video", *tiny, "--steps", "3"])
    assert res.exit_code == 0, res.output
    from lcodec.codec.training.loop import load_checkpoint

    assert load_checkpoint(run / "last.pt")["step"] == 3
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 3 and rows[-1]["bpp_p"] > 0 and rows[-1]["bpp_intra"] > 0
    weights = tmp_path / "v.lcv"
    res = r.invoke(main, ["export", str(run / "last.pt"), "-o", str(weights)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "c.lcd"
    res = r.invoke(main, ["encode", str(clip[0]), "-o", str(out), "--model", str(weights), "--frames", "3"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["decode", str(out), "-o", str(tmp_path / "c.y4m")])
    assert res.exit_code == 4 and "video weights" in res.output
    res = r.invoke(main, ["decode", str(out), "-o", str(tmp_path / "c.y4m"), "--model", str(weights)])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["train-video", "--data", str(tmp_path / "nope"), "--out", str(run)])
    assert res.exit_code == 2


def test_latent_windows_are_consecutive_frames_of_one_clip(clip):
    import torch

    from lcodec.codec.registry import get_model
    from lcodec.codec.training.video_data import LatentClips

    data = LatentClips(clip[0].parent, get_model("default").model, progress=False)
    lat = data.clips[0]
    gen = torch.Generator().manual_seed(3)
    frames = data.window(3, 4, 4, gen)
    assert len(frames) == 4 and frames[0].shape == (3, lat.shape[1], 4, 4)
    for b in range(3):  # every sample: some t and crop such that frames j are lat[t + j] there
        hits = [(t, r, c) for t in range(lat.shape[0] - 3) for r in range(lat.shape[2] - 3)
                for c in range(lat.shape[3] - 3)
                if all(torch.equal(frames[j][b], lat[t + j, :, r : r + 4, c : c + 4].float()) for j in range(4))]
        assert hits
    with pytest.raises(ValueError, match="frames"):
        data.window(1, 4, lat.shape[0] + 1, gen)


def test_train_video_on_decoded_chains_with_distortion(tmp_path, clip):
    r = CliRunner()
    run = tmp_path / "run"
    tiny = _tiny_train_video_args(tmp_path, clip) + ["--chain", "3", "--distortion"]
    res = r.invoke(main, ["train-video", *tiny, "--steps", "2"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["train-video", *tiny, "--steps", "3"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 3 and rows[-1]["bpp_p"] > 0 and 10 < rows[-1]["psnr_vs_unquantized"] < 80
    assert json.loads((run / "config.json").read_text())["chain"] == 3
    res = r.invoke(main, ["train-video", *tiny, "--chain", "17"])
    assert res.exit_code == 2


def test_bench_video_p_and_speed_commands(tmp_path, clip):
    r = CliRunner()
    out = tmp_path / "p.json"
    res = r.invoke(main, ["bench", "video-p", str(clip[0]), "--frames", "3", "--quality", "4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text())["rows"][0]
    assert row["frames"] == 3 and row["p_frame_bytes"] > 0 and row["intra_frame_bytes"] > 0
    assert row["saving"] == pytest.approx(1 - row["p_frame_bytes"] / row["intra_frame_bytes"], abs=1e-3)
    assert out.with_suffix(".md").read_text().startswith("| clip")
    # --model measures given video weights: the bundled file by path gives the same figures
    from lcodec.codec.video_model import bundled_video_paths

    lcv = str(bundled_video_paths()["default"])
    res = r.invoke(main, ["bench", "video-p", str(clip[0]), "--frames", "3", "--quality", "4", "--model", lcv,
                          "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["rows"][0] == row
    res = r.invoke(main, ["bench", "video-p", str(clip[0]), "--model", lcv, "--model", lcv])
    assert res.exit_code == 2 and "at most one" in res.output
    res = r.invoke(main, ["bench", "video-p", str(clip[0]), "--model", str(tmp_path / "none.lcv")])
    assert res.exit_code == 1 and "none.lcv" in res.output and "Traceback" not in res.output
    res = r.invoke(main, ["bench", "video-speed", str(clip[0]), "--frames", "2", "--out", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "s.json").read_text())["rows"][0]["decode_fps"] > 0
    # qualities outside the codec's range are a one-line usage error before any clip is read
    from lcodec.codec.registry import bundled_levels

    levels = bundled_levels()
    res = r.invoke(main, ["bench", "video-p", str(clip[0]), "--quality", f"4,{levels + 1}"])
    assert res.exit_code == 2 and f"[1, {levels}]" in res.output and "Traceback" not in res.output
    res = r.invoke(main, ["bench", "video-speed", str(clip[0]), "--quality", "0.5"])
    assert res.exit_code == 2 and "0.5" in res.output
    assert row["format_version"] == 5 and row["min_leaf"] > 0 and 0 <= row["skip_share"] <= 1
    # the same against a format-3 run: BD-rate needs 4 qualities, so one gives per-quality figures only
    v3 = tmp_path / "p3.json"
    res = r.invoke(main, ["bench", "video-p", str(clip[0]), "--frames", "3", "--quality", "4", "--format-version", "3",
                          "--out", str(v3)])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["bench", "video-p", str(clip[0]), "--frames", "3", "--quality", "4", "--min-leaf", "16",
                          "--against", str(v3), "--out", str(out)])
    assert res.exit_code == 0 and "against the base run (format 3)" in res.output, res.output
    cmp = json.loads(out.read_text())["against"]["clips"]["moving.mkv"]
    assert cmp["base_format_version"] == 3 and cmp["qualities"][0]["base_p_frame_bytes"] > 0
    res = r.invoke(main, ["bench", "video-p", str(clip[0]), "--frames", "3", "--against", str(clip[0])])
    assert res.exit_code != 0 and "not a video-p JSON" in res.output


def test_exact_video_latents_do_not_depend_on_arithmetic_and_float_version_still_decodes(codec):
    from lcodec.bench.determinism import integer_reference

    frames = _moving_frames(4)
    blobs = {}
    for version in (1, 2):
        codec.write_version = version
        buf = io.BytesIO()
        try:
            codec.encode(iter(frames), buf, W, H, 4.0, -1)
        finally:
            codec.write_version = 2
        blobs[version] = buf.getvalue()
        assert blobs[version][4] == version
        assert VideoCodec.info(io.BytesIO(blobs[version]))["format_version"] == version
    decoded = {v: [f for _, f in codec.decode(io.BytesIO(b))] for v, b in blobs.items()}
    for a, b in zip(*decoded.values()):  # the float (version 1) and exact (2) paths code alike
        assert abs(psnr(a, frames[0]) - psnr(b, frames[0])) < 0.2
    # P-frame references and temporal means in fixed point: int64 host arithmetic decodes the same
    with integer_reference():
        again = [f for _, f in codec.decode(io.BytesIO(blobs[2]))]
    assert all(np.array_equal(a, b) for a, b in zip(decoded[2], again))
    assert len(blobs[2]) < 1.02 * len(blobs[1]) + 64


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_gpu_encoded_video_decodes_identically_on_cpu():
    import copy
    import dataclasses

    from lcodec.codec.video_model import get_video_model

    def fresh(device: str) -> VideoCodec:  # separate copies: Module.to() moves shared models in place
        loaded = get_video_model(None)
        image = dataclasses.replace(loaded.image, model=copy.deepcopy(loaded.image.model))
        return VideoCodec(dataclasses.replace(loaded, image=image, temporal=copy.deepcopy(loaded.temporal)), device)

    gpu, cpu = fresh("cuda"), fresh("cpu")
    frames = _moving_frames(4)
    buf = io.BytesIO()
    gpu.encode(iter(frames), buf, W, H, 4.0, -1)
    on_gpu = [f for _, f in gpu.decode(io.BytesIO(buf.getvalue()))]
    on_cpu = [f for _, f in cpu.decode(io.BytesIO(buf.getvalue()))]  # FormatError if desynchronised
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(on_gpu, on_cpu))
