"""Keep superseded bundled models decodable: before new weights replace a bundled model, its decoder goes
into ``weights/archive/`` under the hash its streams name.

An image entry holds every tensor but g_a and h_a (float16, as shipped, about 70 % of the full file);
a video entry is the ``.lcv`` file itself (the temporal model is all decoder), and the image model it
names is found by hash like a stream's, in the archive too. Run ``python -m lcodec.codec.weights_archive``
before copying new weights over ``codec/weights/default.lcw`` / ``default.lcv``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .registry import ARCHIVE_DIR, bundled_paths, decoder_weights, weights_hash


def archive_bundled(archive: Path = ARCHIVE_DIR) -> list[Path]:
    """Archive every bundled image and video model not archived yet; returns the entries written."""
    from .video_model import bundled_video_paths

    archive.mkdir(parents=True, exist_ok=True)
    written = []
    for path in bundled_paths().values():
        data = path.read_bytes()
        entry = archive / f"{weights_hash(data).hex()}.lcw"
        if not entry.exists():
            entry.write_bytes(decoder_weights(data, str(path)))
            written.append(entry)
    for path in bundled_video_paths().values():
        entry = archive / f"{weights_hash(path.read_bytes()).hex()}{path.suffix}"
        if not entry.exists():
            shutil.copyfile(path, entry)
            written.append(entry)
    return written


if __name__ == "__main__":
    for p in archive_bundled():
        print(f"archived {p} ({p.stat().st_size / 2**20:.1f} MiB)")
    sys.exit(0)
