"""Video formats 4 and 5: skip blocks split down to 16x16 (quadtree side data, per-position skipping in the
P-frame entropy model, one stream per P-frame; version 5 with vectors up to +-64 px and skipped positions
re-analysed for synthesis), and version-3 and 4 files still decoding as before."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import constriction
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import sample_rgb

from lcodec.cli.main import main
from lcodec.codec import video_motion as motion
from lcodec.codec import video_split as split
from lcodec.codec.errors import FormatError
from lcodec.codec.video_codec import VideoCodec
from lcodec.codec.video_container import VERSION, FrameRecord, VideoReader
from lcodec.entropy_models.range_coder import RangeDecoder, RangeEncoder, StreamError

ROOT = Path(__file__).resolve().parents[1]
#: A version-3 file written by the version-3 encoder (3 frames of 160x128, q4, low delay; blocks skipped
#: with vectors) and the SHA-256 of its decoded frames' bytes.
V3_FILE = ROOT / "tests" / "data" / "video" / "v3-skip.lcd"
V3_DECODED = "98935233d71f4196320aa4db77072017f665a1197ffaf14550c853ac8448c8e1"
#: A version-4 file written by the version-4 encoder (`_moving_clip(3)`, q4, low delay: split blocks,
#: skipped and coded cells) and the SHA-256 of its decoded frames' bytes.
V4_FILE = ROOT / "tests" / "data" / "video" / "v4-split.lcd"
V4_DECODED = "1df0f180e727fba26b7918bc3efda1f734729e39c20c1fb96ac69606e79f9392"
#: A version-5 file written by the version-5 encoder (`_moving_clip(3)`, q4, low delay) and the SHA-256 of
#: its decoded frames' bytes (skipped positions synthesised from the re-analysed copy).
V5_FILE = ROOT / "tests" / "data" / "video" / "v5-reanalyse.lcd"
V5_DECODED = "efdbf03224648a1e51e4bd75456b4f727326a30311fb29db7b2a6b4a6448159e"




def _random_tree(rng: np.random.Generator, gh: int, gw: int,
                 vmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A valid quadtree state on a gh x gw cell grid: random splits, skips and vectors up to +-`vmax`."""
    size = np.zeros((gh, gw), dtype=np.int64)
    skip = np.zeros((gh, gw), dtype=bool)
    vec = np.zeros((gh, gw, 2), dtype=np.int64)

    def leaf(r: int, c: int, n: int) -> None:
        size[r : r + n, c : c + n] = n * split.CELL
        if rng.random() < 0.6:
            skip[r : r + n, c : c + n] = True
            vec[r : r + n, c : c + n] = rng.integers(-vmax, vmax + 1, 2) if rng.random() < 0.5 else 0

    def node(r: int, c: int, n: int) -> None:
        if n > 1 and rng.random() < 0.5:
            for dr, dc in ((0, 0), (0, n // 2), (n // 2, 0), (n // 2, n // 2)):
                node(r + dr, c + dc, n // 2)
        else:
            leaf(r, c, n)

    for r in range(0, gh, 4):
        for c in range(0, gw, 4):
            node(r, c, 4)
    return size, skip, vec


@pytest.mark.parametrize("version", [4, 5, 6])
def test_side_data_round_trip_and_corruption(version):
    rng = np.random.default_rng(3)
    vmax = split.RANGES[version][0] * motion.SUBPEL
    for gh, gw in ((4, 4), (8, 12), (12, 20)):
        size, skip, vec = _random_tree(rng, gh, gw, vmax)
        ref = rng.integers(-vmax, vmax + 1, (gh // 4, gw // 4, 2)) if version >= 6 else None
        enc = RangeEncoder()
        bits = split.encode_side(enc.raw, size, skip, vec, version, ref)
        data = enc.finish()
        assert 0 < bits <= 8 * len(data)
        side = split.decode_side(RangeDecoder(data).raw, gh, gw, version)
        assert np.array_equal(side.size, size) and np.array_equal(side.skip, skip) and np.array_equal(side.vec, vec)
        assert side.bits == bits
        assert side.ref is None if ref is None else np.array_equal(side.ref, ref)
    if version >= 6:  # reference vectors belong to version 6 on, and only there
        with pytest.raises(ValueError, match="reference vectors"):
            split.encode_side(RangeEncoder().raw, size, skip, vec, version)
        with pytest.raises(ValueError, match="reference vectors"):
            split.encode_side(RangeEncoder().raw, size, skip, vec, 5, ref)
    garbage = [b"", b"\xff" * 8, np.random.default_rng(0).bytes(16)]
    outcomes = []
    for g in garbage:
        try:
            split.decode_side(RangeDecoder(g).raw, 16, 16)
            outcomes.append("decoded")
        except StreamError:
            outcomes.append("error")
    assert "error" in outcomes
    with pytest.raises(ValueError, match="beyond"):  # each version's own range (version 4: +-16 px)
        vec = np.full((4, 4, 2), vmax + 1)
        split.encode_side(constriction.stream.queue.RangeEncoder(), np.full((4, 4), 64), np.ones((4, 4), bool), vec,
                          version, np.zeros((1, 1, 2), np.int64) if version >= 6 else None)
    if version >= 6:
        with pytest.raises(ValueError, match="reference vector component"):
            split.encode_side(RangeEncoder().raw, np.full((4, 4), 64), np.zeros((4, 4), bool),
                              np.zeros((4, 4, 2), np.int64), version, np.full((1, 1, 2), vmax + 1))


def test_estimates_per_size_match_a_per_block_search():
    photo = sample_rgb()[:200, :300]
    ref = np.ascontiguousarray(photo[20:148, 20:276])
    cur = np.ascontiguousarray(photo[23:151, 15:271])  # the scene moved by (-3, +5) pixels
    for block, vec in zip((64, 32, 16), motion.estimate_sizes(cur, ref, (64, 32, 16))):
        assert vec.shape == (128 // block, 256 // block, 2)
        assert np.array_equal(vec, motion.estimate(cur, ref, block))
        inner = vec[:-1, 1:-1]  # blocks whose copy stays inside the reference
        assert (inner == np.array([3 * motion.SUBPEL, -5 * motion.SUBPEL])).mean() > 0.9, (block, vec)
        # the chosen vector's SAD is the least of the candidates a per-block search would try
        pad = motion._padded(motion._luma(ref)[..., None])
        lc = motion._luma(cur)
        r, c = 1, 1
        blk = lc[r * block : (r + 1) * block, c * block : (c + 1) * block]
        got = np.abs(blk - motion._block_at(pad, r * block, c * block, *vec[r, c], block)[..., 0]).sum()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                v = vec[r, c] + (dy, dx)
                alt = np.abs(blk - motion._block_at(pad, r * block, c * block, *v, block)[..., 0]).sum()
                assert got <= alt
    # a big block pastes exactly as its cells pasted with its vector
    v64 = motion.estimate(cur, ref)
    assert np.array_equal(motion.compensate(ref, v64), motion.compensate(ref, v64.repeat(4, 0).repeat(4, 1), 16))


def test_skipped_positions_cost_nothing_and_one_stream_decodes(video_codec):
    frames = [np.ascontiguousarray(sample_rgb()[100:228, 100:228]) for _ in range(2)]  # 2 x 2 blocks, 8 x 8 cells
    ys = [video_codec._latent(f, 4.0) for f in frames]
    with torch.no_grad():
        _, ref = video_codec.model.compress_latent(ys[0], True)
        plain, y_plain = video_codec.temporal.compress(ys[1], ref, ref, True)
        _, y_same, (z_bits, y_bits) = video_codec.temporal.compress(ys[1], ref, ref, True, position_costs=True)
        assert torch.equal(y_same, y_plain) and z_bits.shape == (2, 2) and y_bits.shape == (8, 8)
        skip = torch.zeros(8, 8, dtype=torch.bool)
        skip[:4, :4] = True  # block (0, 0) entirely: no z there
        skip[4:6, 0:2] = True  # a quarter of block (1, 0)
        skip[6, 7] = True  # one cell of block (1, 1)
        streams, y_hat = video_codec.temporal.compress(ys[1], ref, ref, True, skip=skip)
        assert sum(map(len, streams)) < sum(map(len, plain))
        assert torch.equal(y_hat[..., skip], ref[..., skip])  # skipped positions keep the reference exactly
        assert torch.equal(video_codec.temporal.decompress(streams, ref, ref, True, skip), y_hat)
        # z of a partly skipped block is coded: the same z stream as a whole-block mask of block (0, 0)
        whole = torch.tensor([[True, False], [False, False]])
        streams_whole, _ = video_codec.temporal.compress(ys[1], ref, ref, True, skip=whole)
        assert streams_whole[0] == streams[0]
        # side data, z and y in one stream
        enc = RangeEncoder()
        size = np.full((8, 8), 64)
        split.encode_side(enc.raw, size, np.zeros((8, 8), bool), np.zeros((8, 8, 2), np.int64))
        _, y_joint = video_codec.temporal.compress(ys[1], ref, ref, True, skip=skip, coder=enc)
        data = enc.finish()
        dec = RangeDecoder(data)
        split.decode_side(dec.raw, 8, 8)
        assert torch.equal(video_codec.temporal.decompress_from(dec, ref, ref, True, skip), y_joint)
        with pytest.raises(StreamError, match="trailing"):
            dec = RangeDecoder(data + b"\x00" * 8)
            split.decode_side(dec.raw, 8, 8)
            video_codec.temporal.decompress_from(dec, ref, ref, True, skip)


def _moving_clip(n: int) -> list[np.ndarray]:
    """A still picture with a small object moving across it and a little noise: parts of blocks move."""
    base = sample_rgb()[60:204, 40:296].astype(int)  # 144 x 256: 3 x 4 blocks, the last row partly outside
    patch = sample_rgb()[300:332, 500:532].astype(int)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        f = base.copy()
        f[40 : 72, 20 + 12 * i : 52 + 12 * i] = patch
        out.append(np.clip(f + rng.integers(-2, 3, f.shape), 0, 255).astype(np.uint8))
    return out


@pytest.mark.parametrize("min_leaf, reprice", [(16, True), (32, False)])
def test_version_4_round_trip_splits_and_reports(video_codec, tmp_path, min_leaf, reprice):
    frames = _moving_clip(4)
    h, w = frames[0].shape[:2]
    saved = video_codec.reprice
    video_codec.min_leaf, video_codec.reprice = min_leaf, reprice
    try:
        buf = io.BytesIO()
        stats = video_codec.encode(iter(frames), buf, w, h, 4.0, -1)
    finally:
        video_codec.min_leaf, video_codec.reprice = split.MIN_LEAF, saved
    data = buf.getvalue()
    assert data[4] == video_codec.write_version == 5 and [s.type for s in stats] == ["I", "P", "P", "P"]
    records = list(VideoReader(io.BytesIO(data)).records())
    assert all(len(r.streams) == 1 for r in records)
    info = VideoCodec.info(io.BytesIO(data))
    assert info["format_version"] == 5
    for st, row in zip(stats[1:], info["frames"][1:]):
        assert row["skipped_cells"] == st.skipped and row["cells"] == st.units == 12 * 16
        assert row["motion_bytes"] == st.motion_bytes > 0 and row["motion_bytes"] + row["latent_bytes"] < row["bytes"]
        assert 0 < row["skipped_cells"] < row["cells"]
    assert any(row["split_blocks"] > 0 for row in info["frames"][1:])
    decoded = [f for _, f in video_codec.decode(io.BytesIO(data))]
    assert all(np.array_equal(a, b) for a, b in zip(decoded, (f for _, f in video_codec.decode(io.BytesIO(data)))))
    psnr = [10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2)) for a, b in zip(decoded, frames)]
    assert min(psnr) > 25, psnr
    (idx, last), = list(video_codec.decode(io.BytesIO(data), first=3, last=3))
    assert idx == 3 and np.array_equal(last, decoded[3])
    path = tmp_path / "s.lcd"
    path.write_bytes(data)
    res = CliRunner().invoke(main, ["info", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["frames"][2]["skipped_cells"] == stats[2].skipped
    res = CliRunner().invoke(main, ["info", str(path)])  # the text form counts cells too, not only whole blocks
    assert res.exit_code == 0 and f"{stats[2].skipped}/192 cells of 16x16 skipped" in res.output, res.output


def _decoded_digest(codec: VideoCodec, path: Path) -> tuple[str, dict]:
    """SHA-256 of a video file's decoded frames' bytes, and its `info`."""
    h = hashlib.sha256()
    for _, rgb in codec.decode(io.BytesIO(path.read_bytes())):
        h.update(rgb.tobytes())
    return h.hexdigest(), VideoCodec.info(io.BytesIO(path.read_bytes()))


def test_version_3_file_still_decodes_byte_for_byte(video_codec):
    digest, info = _decoded_digest(video_codec, V3_FILE)
    assert digest == V3_DECODED
    assert info["format_version"] == 3 and info["frames"][1]["skipped_blocks"] > 0


def test_corrupt_side_data_is_a_format_error(video_codec, tmp_path):
    frames = _moving_clip(2)
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    video_codec.encode(iter(frames), buf, w, h, 4.0, -1)
    data = bytearray(buf.getvalue())
    rec = list(VideoReader(io.BytesIO(bytes(data))).records())[1]
    stream = bytearray(rec.streams[0])
    stream[:4] = b"\xff\xff\xff\xff"  # same length, valid CRC: the side data at the start is wrong
    forged = FrameRecord(rec.type, rec.index, rec.quality, [bytes(stream)]).pack()
    data[rec.offset : rec.offset + len(forged)] = forged
    with pytest.raises(FormatError, match="frame 1 .P-frame.: corrupt stream"):
        list(video_codec.decode(io.BytesIO(bytes(data))))
    path = tmp_path / "bad.lcd"
    path.write_bytes(bytes(data))
    res = CliRunner().invoke(main, ["decode", str(path), "-o", str(tmp_path / "out.y4m")])
    assert res.exit_code != 0 and "frame 1 (P-frame)" in res.output and "Traceback" not in res.output


def test_version_4_file_still_decodes_byte_for_byte(video_codec):
    digest, info = _decoded_digest(video_codec, V4_FILE)
    assert digest == V4_DECODED
    assert info["format_version"] == 4 and info["frames"][1]["split_blocks"] > 0
    assert 0 < info["frames"][1]["skipped_cells"] < info["frames"][1]["cells"]


def test_version_5_file_still_decodes_byte_for_byte(video_codec):
    digest, info = _decoded_digest(video_codec, V5_FILE)
    assert digest == V5_DECODED
    assert info["format_version"] == 5 and info["frames"][1]["split_blocks"] > 0
    assert 0 < info["frames"][1]["skipped_cells"] < info["frames"][1]["cells"]


def test_version_5_finds_long_vectors_and_decodes_alike_on_1_and_2_threads(video_codec):
    """An object moving 24 px per frame (beyond version 4's +-16 px) is copied with its vector; the frames
    (whose synthesis runs g_a on the decoded copy) do not depend on the thread count."""
    base = sample_rgb()[60:188, 40:296].astype(np.uint8)  # 128 x 256
    patch = sample_rgb()[300:364, 480:544]
    frames = []
    for i in range(3):
        f = base.copy()
        f[32:96, 16 + 24 * i : 80 + 24 * i] = patch
        frames.append(f)
    vec = motion.estimate(frames[1], frames[0], 16, split.RANGES[5][0])
    assert (vec[2:6, 3:6] == (0, -24 * motion.SUBPEL)).all(axis=-1).mean() > 0.8, vec[..., 1]  # copied from 24 px left
    buf = io.BytesIO()
    stats = video_codec.encode(iter(frames), buf, 256, 128, 4.0, -1)
    assert [s.type for s in stats] == ["I", "P", "P"] and stats[1].skipped > 0
    data = buf.getvalue()
    outs = []
    n = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            outs.append([f for _, f in video_codec.decode(io.BytesIO(data))])
    finally:
        torch.set_num_threads(n)
    assert all(np.array_equal(a, b) for a, b in zip(*outs))
    psnr = [10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2)) for a, b in zip(outs[0], frames)]
    assert min(psnr) > 30, psnr


def test_version_6_aligns_its_reference_by_the_coded_block_vectors(video_codec, monkeypatch):
    """A camera pan of 20 px per frame: the P-frames' reference vectors (side data) find it; the aligned
    reference is the exact g_a of the previous decoded frame moved by them, so a decoder on another thread
    count whose exact arithmetic sums in other splits (other BLAS blocking) decodes the same frames."""
    photo = sample_rgb()
    frames = [np.ascontiguousarray(photo[100:228, 60 + 20 * i : 316 + 20 * i]) for i in range(3)]
    buf = io.BytesIO()
    monkeypatch.setattr(video_codec, "write_version", VERSION)
    stats = video_codec.encode(iter(frames), buf, 256, 128, 4.0, -1)
    assert [s.type for s in stats] == ["I", "P", "P"]
    data = buf.getvalue()
    assert data[4] == VERSION == 6 and VideoCodec.info(io.BytesIO(data))["format_version"] == 6
    rec = list(VideoReader(io.BytesIO(data)).records())[1]
    side = split.decode_side(RangeDecoder(rec.streams[0]).raw, 8, 16, 6)
    assert side.ref.shape == (2, 4, 2)
    # within a pixel of the pan (the reference is the decoded, lossy frame); the last column looks past the edge
    assert np.abs(side.ref[:, :3] - (0, 20 * motion.SUBPEL)).max() <= motion.SUBPEL, side.ref
    from lcodec.entropy_models import fixed_point
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        first = [f for _, f in video_codec.decode(io.BytesIO(data))]
        torch.set_num_threads(2)
        monkeypatch.setattr(fixed_point.ExactConv, "CHUNK", 61)
        second = [f for _, f in video_codec.decode(io.BytesIO(data))]
    finally:
        torch.set_num_threads(n)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    psnr = [10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2)) for a, b in zip(first, frames)]
    assert min(psnr) > 28, psnr


def test_fuzzer_seeds_cover_version_6_and_the_versions_still_read(video_codec):
    from lcodec.bench.fuzz_video import fuzz_video, video_seeds

    seeds = video_seeds(video_codec, np.random.default_rng(0))
    assert [s[4] for s in seeds] == [6, 6, 5, 4, 3, 2, 1]
    d = fuzz_video(60, seed=5, codec=video_codec, time_limit=10.0).to_dict()
    assert d["cases"] == 60 and d["finding_count"] == 0, d["findings"][:3]
