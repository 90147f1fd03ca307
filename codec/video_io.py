"""Reading videos (anything PyAV/FFmpeg reads) as RGB frames, and writing decoded frames out.

Colour is explicit at both ends: frames are converted to 8-bit RGB by FFmpeg's scaler on input,
the codec works in RGB, and outputs are written in the pixel format asked for (4:2:0 by default for
y4m / mp4 / mkv, 4:4:4 on request; BT.601 limited range, as FFmpeg converts RGB by default).
Frames stream through: nothing holds more than one frame.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError, OutputError
from .image_io import publish

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".y4m", ".m4v", ".mpg", ".mpeg", ".ts",
                  ".flv", ".ogv", ".wmv", ".3gp", ".hevc", ".h264", ".264", ".265", ".ivf", ".yuv4mpeg"}
OUTPUT_SUFFIXES = (".y4m", ".mkv", ".mp4")
CHROMA = {"420": "yuv420p", "444": "yuv444p", "rgb": "bgr0"}  # rgb: .mkv only (FFV1, bit-exact)


def is_video_path(path: str | Path) -> bool:
    """Whether `path` names a video by its extension (images go to the image codec)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoSource:
    """An opened input video: size, frame rate, and the frames chosen by start / count."""

    path: Path
    width: int
    height: int
    rate: Fraction
    start: int
    count: int | None  # frames to read (None: to the end)
    total_hint: int | None  # frames the container says it has (for progress bars), if known

    def frames(self) -> Iterator[np.ndarray]:
        """RGB uint8 [H, W, 3] frames, decoded one at a time."""
        import av

        n = 0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for i, frame in enumerate(container.decode(stream)):
                    if i < self.start:
                        continue
                    if self.count is not None and n >= self.count:
                        break
                    yield frame.to_ndarray(format="rgb24", width=self.width, height=self.height)
                    n += 1
        except av.error.FFmpegError as exc:
            raise InputError(f"cannot decode video {self.path}: {exc}") from None
        if n == 0:
            raise InputError(f"no frames to encode in {self.path} (start {self.start}, the video is shorter)")


def open_video(path: str | Path, start: int = 0, frames: int | None = None) -> VideoSource:
    """Open an input video and read its properties (first frame decoded to get its true size)."""
    import av

    path = Path(path)
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.is_dir():
        raise InputError(f"input is a folder: {path}")
    if start < 0 or (frames is not None and frames < 1):
        raise InputError("--start must be >= 0 and --frames >= 1")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"no video stream in {path}")
            stream = container.streams.video[0]
            first = next(container.decode(stream), None)
            if first is None:
                raise InputError(f"video has no frames: {path}")
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            total = stream.frames or None
            w, h = first.width, first.height
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot read video {path}: {str(exc).splitlines()[0]}") from None
    if w < 1 or h < 1:
        raise InputError(f"video frames have no pixels: {path}")
    rate = Fraction(rate).limit_denominator(1_000_000)
    hint = None if total is None else max(0, total - start)
    if hint is not None and frames is not None:
        hint = min(hint, frames)
    return VideoSource(path, w, h, rate, start, frames, hint)


# ---- writing ----------------------------------------------------------------------------------


def _yuv_planes(rgb: np.ndarray, pix_fmt: str) -> list[np.ndarray]:
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format=pix_fmt)
    return [np.asarray(p).reshape(-1)[: p.height * p.line_size].reshape(p.height, p.line_size)[:, : p.width]
            for p in frame.planes]


class FrameSink:
    """Writes frames to a .y4m, .mkv (FFV1), .mp4 (lossless H.264) file or a folder of PNGs.

    Output goes to a temporary name beside the target and is renamed into place by `close()`, so an
    interrupted decode never leaves a partial file; `abort()` removes it.
    """

    def __init__(self, target: str | Path, width: int, height: int, rate: Fraction, chroma: str = "420",
                 force: bool = False) -> None:
        self.target = Path(target)
        self.width, self.height, self.rate = width, height, rate
        if chroma not in CHROMA:
            raise OutputError(f"unknown chroma format {chroma!r} (420, 444 or rgb)")
        self.pix_fmt = CHROMA[chroma]
        self.count = 0
        self.png = "%" in self.target.name
        suffix = self.target.suffix.lower()
        if chroma == "rgb" and (self.png or suffix != ".mkv"):
            raise OutputError("--chroma rgb is for .mkv output (FFV1 in RGB); PNG frames are always RGB")
        if not self.png and suffix not in OUTPUT_SUFFIXES:
            raise OutputError(f"cannot write video as '{suffix or self.target.name}': use .y4m, .mkv, .mp4 "
                              "or a PNG pattern such as out/%05d.png")
        if self.png:
            try:
                self.target.name % 0
            except (TypeError, ValueError):
                raise OutputError(f"bad frame pattern {self.target.name!r} (use e.g. %05d.png)") from None
            self.folder = self.target.parent
            if self.folder.is_dir() and any(self.folder.iterdir()) and not force:
                raise OutputError(f"output folder is not empty: {self.folder} (use --force to write into it)")
            parent = self.folder.parent
        else:
            if self.target.exists() and not force:
                raise OutputError(f"output exists: {self.target} (use --force to overwrite)")
            parent = self.target.parent
        if not parent.is_dir():
            raise OutputError(f"output folder does not exist: {parent}")
        try:
            if self.png:
                self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.", suffix=".partial", dir=parent))
            else:
                fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".partial" + suffix, dir=parent)
                os.close(fd)
                self.tmp = Path(name)
        except OSError as exc:
            raise OutputError(f"cannot write to {parent}: {exc.strerror}") from None
        self._y4m = None
        self._av = None
        if not self.png and suffix == ".y4m":
            self._y4m = open(self.tmp, "wb")
            tag = "C420jpeg" if self.pix_fmt == "yuv420p" else "C444"
            self._y4m.write(f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} Ip A1:1 {tag}\n"
                            .encode())
        elif not self.png:
            self._guard(self._open_av, suffix)

    def _open_av(self, suffix: str) -> None:
        import av

        self._av = av.open(str(self.tmp), mode="w", format="matroska" if suffix == ".mkv" else "mp4")
        if suffix == ".mkv":
            stream = self._av.add_stream("ffv1", rate=self.rate)
        else:
            stream = self._av.add_stream("libx264", rate=self.rate, options={"qp": "0", "preset": "medium"})
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = self.pix_fmt
        self._stream = stream

    def _guard(self, fn, *args) -> None:
        """Run an FFmpeg step; its errors (e.g. odd sizes in 4:2:0 H.264) become OutputError."""
        import av

        try:
            fn(*args)
        except av.error.FFmpegError as exc:
            self.abort()
            raise OutputError(f"cannot write {self.target.name}: {str(exc).splitlines()[0]}") from None

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 [H, W, 3] frame."""
        self._guard(self._write, rgb)

    def _write(self, rgb: np.ndarray) -> None:
        if self.png:
            from PIL import Image

            Image.fromarray(rgb).save(self.tmp / (self.target.name % self.count))
        elif self._y4m is not None:
            self._y4m.write(b"FRAME\n")
            for plane in _yuv_planes(rgb, self.pix_fmt):
                self._y4m.write(np.ascontiguousarray(plane).tobytes())
        else:
            import av

            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format=self.pix_fmt)
            frame.pts = self.count
            for packet in self._stream.encode(frame):
                self._av.mux(packet)
        self.count += 1

    def close(self) -> None:
        """Finish the file and move it into place."""
        self._guard(self._close)

    def _close(self) -> None:
        if self._y4m is not None:
            self._y4m.close()
        if self._av is not None:
            for packet in self._stream.encode(None):
                self._av.mux(packet)
            self._av.close()
        if self.png:
            self.folder.mkdir(exist_ok=True)
            for p in sorted(self.tmp.iterdir()):
                publish(p, self.folder / p.name)
            self.tmp.rmdir()
        else:
            publish(self.tmp, self.target)

    def abort(self) -> None:
        """Remove the partial output."""
        try:
            if self._y4m is not None:
                self._y4m.close()
            if self._av is not None:
                self._av.close()
        except Exception:  # noqa: BLE001 - best effort on the way out of an error
            pass
        if self.png:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)
