"""Hostile input: fuzzed streams, size limits checked before allocation, the input pixel limit."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch
from PIL import Image

from lcodec.bench.fuzz import field_spans, fuzz, seed_streams
from lcodec.codec.container import ImageHeader, pack_image, unpack_image, varint
from lcodec.codec.errors import FormatError, InputError
from lcodec.codec.image_io import read_image
from lcodec.entropy_models.range_coder import RangeDecoder, RangeEncoder, StreamError


@pytest.fixture(scope="module")
def seeds(codec) -> list[bytes]:
    return seed_streams(codec, np.random.default_rng(0))


def _rewrite(blob: bytes, **fields: int) -> bytes:
    """Replace header fields (as varints) and recompute the CRC (so the change reaches the parser)."""
    import struct
    import zlib

    spans = field_spans(blob)
    body = blob[:-4]
    for name, (a, b) in sorted(spans.items(), key=lambda kv: -kv[1][0]):
        if name in fields:
            body = body[:a] + varint(fields[name]) + body[b:]
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def test_fuzz_cases_end_in_image_or_documented_error(codec):
    report = fuzz(400, seed=7, codec=codec, time_limit=10.0)
    d = report.to_dict()
    assert d["cases"] == 400
    assert d["finding_count"] == 0, d["findings"][:3]
    # the mutations must reach every layer: some decode, most are refused with a FormatError
    assert d["outcomes"].get("decoded", 0) > 0 and d["outcomes"].get("FormatError", 0) > 200
    assert d["slowest_s"] < 10.0


def test_bench_fuzz_command_reports_the_count(tmp_path):
    from click.testing import CliRunner

    from lcodec.cli.main import main

    out = tmp_path / "fuzz.json"
    res = CliRunner().invoke(main, ["bench", "fuzz", "60", "--seed", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "60 cases in" in res.output and "findings: 0" in res.output
    import json

    d = json.loads(out.read_text())
    assert d["cases"] == 60 and sum(d["outcomes"].values()) == 60


def test_huge_declared_size_with_valid_crc_is_refused_before_work(codec, seeds):
    blob = seeds[0]  # 64x48
    for h, w in [(8000, 8000), (4096, 4096), (65536, 65536), (1 << 34, 48)]:
        bad = _rewrite(blob, width=w, height=h)
        t0 = time.perf_counter()
        with pytest.raises((FormatError, InputError)) as info:
            codec.decode(bad)
        assert time.perf_counter() - t0 < 2.0, f"{w}x{h} took too long"
        assert "too short" in str(info.value) or "implausible" in str(info.value) or "limit" in str(info.value)


def test_decode_pixel_limit(codec, seeds):
    with pytest.raises(InputError, match="limit"):
        codec.decode(seeds[0], max_pixels=1000)
    assert codec.decode(seeds[0], max_pixels=64 * 48).size == (64, 48)


def test_cli_decode_pixel_limit(tmp_path, seeds):
    from click.testing import CliRunner

    from lcodec.cli.main import main

    (tmp_path / "s.lcd").write_bytes(seeds[0])
    res = CliRunner().invoke(main, ["decode", str(tmp_path / "s.lcd"), "-o", str(tmp_path / "s.png"),
                                    "--max-pixels", "1000"])
    assert res.exit_code == 2 and "above the limit of 1000" in res.output
    assert not (tmp_path / "s.png").exists()


def test_tiled_stream_count_cannot_outgrow_the_file(codec, seeds):
    for tiled, version in ((seeds[4], 4), (seeds[6], 3), (seeds[8], 2), (seeds[10], 5)):
        assert tiled[4] == version
        bad = _rewrite(tiled, width=60000, height=60000)
        with pytest.raises(FormatError, match="streams|truncated"):
            codec.decode(bad)
        bad = _rewrite(tiled, tile=100)
        with pytest.raises(FormatError, match="tile"):
            codec.decode(bad)


def test_metadata_record_lengths_cannot_reach_outside_the_file(codec, seeds):
    tagged = seeds[9]
    assert tagged[4] == 5 and codec.decode(tagged).info["icc_profile"]
    for size in (0, 1 << 20, 1 << 30, len(tagged)):
        with pytest.raises(FormatError, match="metadata|truncated|lengths"):
            codec.decode(_rewrite(tagged, metadata_length=size))


def test_range_decoder_on_random_words_never_crashes_or_hangs(codec):
    tables = codec.model.context.gaussian.tables
    rng = np.random.default_rng(3)
    for trial in range(30):
        data = rng.integers(0, 256, 4 * int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
        dec = RangeDecoder(data)
        idx = rng.integers(0, tables.count, 5000)
        t0 = time.perf_counter()
        try:
            vals = dec.decode(idx, tables)
            assert vals.dtype == np.int64 and np.all(np.abs(vals) < (1 << 34))
        except StreamError:
            pass
        assert time.perf_counter() - t0 < 2.0


def test_absurd_escaped_values_give_a_format_error_not_nan_pixels(codec, seeds):
    # a stream our own encoder writes for a hyper-latent of absurd values (escapes of 2^31, the most
    # the escape code carries whatever a table's range):
    # valid range coding, valid CRC, but the model turns it into inf/NaN parameters
    m = codec.model
    z = torch.full((1, m.config.nz, 1, 1), float(2**31))
    for seed in (seeds[0], seeds[5]):  # version 4 (z, y in one stream) and version 3 (two streams)
        header, streams = unpack_image(seed)
        enc = RangeEncoder()
        m.z_prior.compress(z, enc)
        forged = pack_image(ImageHeader(header.model, header.weights_hash, header.quality, header.height,
                                        header.width, version=header.version),
                            [enc.finish()] + ([streams[1]] if header.version < 4 else []))
        try:
            img = codec.decode(forged)
        except FormatError:
            continue
        arr = np.asarray(img)
        assert arr.shape == (48, 64, 3)  # if it decodes, it is a proper image


def test_non_finite_entropy_parameters_are_a_stream_error(codec):
    # whatever a corrupt stream decodes to, inf/NaN parameters must stop decoding, not reach the pixels
    hyper = torch.zeros(1, codec.model.config.hyper, 2, 2)
    hyper[0, :, 0, 0] = float("inf")
    with pytest.raises(StreamError, match="non-finite"):
        codec.model.context.decompress(hyper, RangeDecoder(b"\x00" * 64))


def test_input_pixel_limit_and_pillow_bomb_guard(tmp_path, monkeypatch):
    p = tmp_path / "a.png"
    Image.new("RGB", (300, 200), (10, 20, 30)).save(p)
    with pytest.raises(InputError, match="above the limit of 1000"):
        read_image(p, max_pixels=1000)
    with pytest.raises(InputError, match="limit of 50000"):  # below 2x: our check; above: Pillow's guard
        read_image(p, max_pixels=50_000)
    # a limit above Pillow's own default must not trip Pillow's guard (it follows ours)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert read_image(p, max_pixels=100_000).rgb.shape == (200, 300, 3)
    assert Image.MAX_IMAGE_PIXELS == 10_000



def test_quality_above_the_models_levels_is_a_format_error(codec, seeds, monkeypatch):
    # the container accepts the whole ladder (1..12); for a model with 8 levels a valid-CRC header
    # claiming quality 9 must fail cleanly instead of extrapolating its gains (a bundled model with
    # more levels is made to declare 8: the check reads the model's configuration)
    if codec.max_quality > 8:
        monkeypatch.setattr(codec.model, "config", dataclasses.replace(codec.model.config, levels=8))
    header, streams = unpack_image(seeds[0])
    forged = pack_image(ImageHeader(header.model, header.weights_hash, 9.0, header.height, header.width),
                        streams)
    with pytest.raises(FormatError, match="above the model's 8 levels"):
        codec.decode(forged)
