"""Video format 3 (and 4 where shared): skip flags and motion vectors (side stream, compensation,
search), skipped blocks in the P-frame entropy model, and frame types chosen by rate-distortion cost."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import sample_rgb

from lcodec.cli.main import main
from lcodec.codec import video_motion as motion
from lcodec.codec.errors import FormatError
from lcodec.codec.video_codec import DEFAULT_VERSION, VideoCodec
from lcodec.codec.video_container import FrameRecord, VideoReader
from lcodec.entropy_models.range_coder import StreamError





def test_side_stream_round_trip_and_corruption():
    rng = np.random.default_rng(1)
    for bh, bw in ((1, 1), (3, 5), (6, 11)):
        skip = rng.random((bh, bw)) < 0.6
        vec = rng.integers(-motion.V3_RANGE * motion.SUBPEL, motion.V3_RANGE * motion.SUBPEL + 1, (bh, bw, 2))
        vec[rng.random((bh, bw)) < 0.5] = 0
        data = motion.encode_side(skip, vec)
        s2, v2 = motion.decode_side(data, bh, bw)
        assert np.array_equal(s2, skip) and np.array_equal(v2[skip], vec[skip]) and not v2[~skip].any()
    with pytest.raises(StreamError):
        motion.decode_side(data[:-1], bh, bw)
    with pytest.raises(StreamError):
        motion.decode_side(data + b"\x00" * 8, bh, bw)
    with pytest.raises(ValueError):
        motion.encode_side(np.ones((1, 1), bool), np.full((1, 1, 2), motion.V3_RANGE * motion.SUBPEL + 1))


def test_compensation_is_integer_arithmetic_and_search_finds_a_shift():
    photo = sample_rgb()[:200, :300]
    ref = np.ascontiguousarray(photo[20:148, 20:276])  # 128 x 256: 2 x 4 blocks
    cur = np.ascontiguousarray(photo[23:151, 15:271])  # the scene moved by (-3, +5) pixels
    vec = motion.estimate(cur, ref)
    inner = vec[:, 1:-1]  # blocks whose copy stays inside the reference
    assert (inner == np.array([3 * motion.SUBPEL, -5 * motion.SUBPEL])).all(), vec
    pred = motion.compensate(ref, vec)
    assert np.array_equal(pred[:125, 64:192], cur[:125, 64:192])  # below: the reference ends
    # half-pel: rounded averages of the neighbours, exactly
    half = np.zeros_like(vec)
    half[..., 1] = 1
    p = motion.compensate(ref, half).astype(int)
    r = ref.astype(int)
    assert np.array_equal(p[:, :-1], (r[:, :-1] + r[:, 1:] + 1) >> 1)


def test_skipped_blocks_cost_nothing_and_decode_exactly(video_codec):
    frames = [np.ascontiguousarray(sample_rgb()[100:228, 100:228]) for _ in range(2)]  # 2 x 2 blocks
    ys = [video_codec._latent(f, 4.0) for f in frames]
    with torch.no_grad():
        _, ref = video_codec.model.compress_latent(ys[0], True)
        plain, y_plain = video_codec.temporal.compress(ys[1], ref, ref, True)
        again, y_again, bits = video_codec.temporal.compress(ys[1], ref, ref, True, costs=True)
        assert again == plain and torch.equal(y_again, y_plain) and bits.shape == (2, 2) and (bits > 0).all()
        assert abs(bits.sum() / 8 - sum(map(len, plain))) < 0.1 * sum(map(len, plain)) + 16
        for skip in (torch.tensor([[True, False], [False, True]]), torch.ones(2, 2, dtype=torch.bool)):
            streams, y_hat = video_codec.temporal.compress(ys[1], ref, ref, True, skip=skip)
            assert sum(map(len, streams)) < sum(map(len, plain))
            assert torch.equal(video_codec.temporal.decompress(streams, ref, ref, True, skip), y_hat)
        assert streams == [b"", b""]
        with pytest.raises(StreamError):
            video_codec.temporal.decompress(streams, ref, ref, True, torch.ones(1, 2, dtype=torch.bool))


def _static_clip(n: int) -> list[np.ndarray]:
    base = sample_rgb()[60:204, 40:296]  # 144 x 256: 3 x 4 blocks, the last row partly outside
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):  # a still scene with a little sensor noise
        noise = rng.integers(-2, 3, base.shape)
        out.append(np.clip(base.astype(int) + noise, 0, 255).astype(np.uint8))
    return out


def test_version_3_skips_static_blocks_and_reports_them(video_codec, tmp_path):
    frames = _static_clip(4)
    h, w = frames[0].shape[:2]
    blobs = {}
    for version in (2, 3):
        video_codec.write_version = version
        try:
            buf = io.BytesIO()
            stats = video_codec.encode(iter(frames), buf, w, h, 4.0, -1)
        finally:
            video_codec.write_version = DEFAULT_VERSION
        blobs[version] = buf.getvalue(), stats
    data, stats = blobs[3]
    assert data[4] == 3 and [s.type for s in stats] == ["I", "P", "P", "P"]
    assert all(s.skipped > 0 and s.motion_bytes > 0 for s in stats[1:])
    assert len(data) < len(blobs[2][0])
    info = VideoCodec.info(io.BytesIO(data))
    assert info["format_version"] == 3
    p = info["frames"][1]
    assert p["motion_bytes"] == stats[1].motion_bytes and p["skipped_blocks"] == stats[1].skipped
    assert p["blocks"] == 12 and p["motion_bytes"] + p["latent_bytes"] < p["bytes"]
    decoded = [f for _, f in video_codec.decode(io.BytesIO(data))]
    assert all(np.array_equal(a, b) for a, b in zip(decoded, (f for _, f in video_codec.decode(io.BytesIO(data)))))
    (idx, last), = list(video_codec.decode(io.BytesIO(data), first=3, last=3))
    assert idx == 3 and np.array_equal(last, decoded[3])
    # the CLI shows the same per-frame fields
    path = tmp_path / "s.lcd"
    path.write_bytes(data)
    res = CliRunner().invoke(main, ["info", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["frames"][2]["skipped_blocks"] == stats[2].skipped
    res = CliRunner().invoke(main, ["info", str(path)])
    assert res.exit_code == 0 and f"{stats[2].skipped}/12 blocks skipped" in res.output, res.output


def test_corrupt_side_stream_is_a_format_error(video_codec):
    frames = _static_clip(2)
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    video_codec.write_version = 3
    try:
        video_codec.encode(iter(frames), buf, w, h, 4.0, -1)
    finally:
        video_codec.write_version = DEFAULT_VERSION
    data = bytearray(buf.getvalue())
    rec = list(VideoReader(io.BytesIO(bytes(data))).records())[1]
    side = bytearray(rec.streams[0])
    side[0] ^= 0xFF  # same length, valid CRC: only the side stream's contents are wrong
    forged = FrameRecord(rec.type, rec.index, rec.quality, [bytes(side), *rec.streams[1:]]).pack()
    data[rec.offset : rec.offset + len(forged)] = forged
    with pytest.raises(FormatError, match="frame 1 .P-frame."):
        list(video_codec.decode(io.BytesIO(bytes(data))))


def _cut_clip() -> list[np.ndarray]:
    photo = sample_rgb()
    a = np.ascontiguousarray(photo[100:167, 100:201])
    b = np.ascontiguousarray(photo[300:367, 500:601][::-1])  # another scene, nothing in common
    return [np.zeros_like(a), a, a, b, b, b]


@pytest.mark.parametrize("version", [2, 3, 4])
def test_frame_types_by_cost_code_a_cut_as_intra(video_codec, version):
    frames = _cut_clip()
    h, w = frames[0].shape[:2]
    video_codec.write_version = version
    try:
        types = {}
        for adaptive in (False, True):
            buf = io.BytesIO()
            stats = video_codec.encode(iter(frames), buf, w, h, 4.0, -1, adaptive=adaptive)
            types[adaptive] = "".join(s.type for s in stats)
        assert types[False] == "IPPPPP"
        assert types[True][1] == "I" and types[True][3] == "I" and types[True][5] == "P", types
        # the intra period is an upper bound counted from the last I-frame, wherever it came from
        a, b = frames[1], frames[3]
        buf = io.BytesIO()
        t = "".join(s.type for s in video_codec.encode(iter([a, b, b, b, b, b]), buf, w, h, 4.0, 3))
        assert t == "IIPPIP", t
        buf.seek(0)
        assert [i for i, _ in video_codec.decode(buf, first=3)] == [3, 4, 5]
    finally:
        video_codec.write_version = DEFAULT_VERSION
