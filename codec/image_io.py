"""Reading and writing image files, colour modes, and the lossless alpha stream.

Inputs are anything Pillow opens. The codec itself works on 8-bit RGB: grey images are coded as
RGB and turned back into grey; alpha is split off and coded losslessly (delta filter + zlib);
16-bit inputs are reduced to 8 bits with a warning. EXIF orientation is applied to the pixels (as a
viewer displays them) and the ICC profile, EXIF and XMP are kept to travel in the file's metadata
record; images with several frames are refused (they are videos).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import FormatError, InputError, OutputError

#: Refuse inputs above this many pixels (guards against decompression bombs); 8K is 33 Mpx.
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024


@dataclass
class PreparedImage:
    """An input split into the 8-bit RGB the model codes and what is needed to rebuild its mode."""

    rgb: np.ndarray  # uint8 [H, W, 3]
    mode: str  # "RGB", "L", "RGBA" or "LA"
    alpha: np.ndarray | None = None  # uint8 [H, W]
    metadata: dict[str, bytes] = field(default_factory=dict)  # icc_profile / exif / xmp, as Pillow names them
    orientation: int = 1  # EXIF orientation applied to `rgb` (1: the input had none)

    def stripped(self) -> "PreparedImage":
        """The same pixels without metadata (what ``lcodec encode --strip`` codes)."""
        return replace(self, metadata={}, orientation=1)


class LossyReductionWarning(UserWarning):
    """The input had more precision than lcodec keeps (16-bit reduced to 8-bit)."""


def _to_8bit(im: Image.Image) -> Image.Image:
    """Reduce 16-bit / 32-bit integer and float grey images to 8-bit 'L'."""
    arr = np.asarray(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N") or (im.mode == "I" and arr.max(initial=0) > 255):
        warnings.warn("16-bit input reduced to 8 bits per sample", LossyReductionWarning, stacklevel=3)
        arr8 = np.clip(np.round(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L")
    if im.mode == "I":
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        warnings.warn("floating-point input reduced to 8 bits per sample", LossyReductionWarning, stacklevel=3)
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.round(arr * scale), 0, 255).astype(np.uint8), "L")
    return im


#: Pillow ``info`` keys that hold XMP (JPEG/WebP/TIFF use "xmp"; PNG's iTXt chunk has its own name).
_XMP_KEYS = ("xmp", "XML:com.adobe.xmp")
EXIF_ORIENTATION = 0x0112


def check_single_frame(im: Image.Image, name: str = "image") -> None:
    """Refuse animated or multi-page images (InputError): their other frames would be dropped.

    A phone's MPO JPEG (the photo plus a preview or depth map) is a still photo and passes."""
    n = getattr(im, "n_frames", 1)
    if n > 1 and im.format != "MPO":
        raise InputError(f"{name} has {n} frames (animated or multi-page), and an image file holds one: "
                         f"convert it to a video (e.g. ffmpeg -i {name} clip.y4m) and run lcodec encode clip.y4m")


def metadata_of(im: Image.Image) -> dict[str, bytes]:
    """ICC profile, EXIF and XMP of a Pillow image as bytes (keys as Pillow's save() takes them)."""
    out: dict[str, bytes] = {}
    for key in ("icc_profile", "exif"):
        value = im.info.get(key)
        if isinstance(value, (bytes, bytearray)) and value:
            out[key] = bytes(value)
    for key in _XMP_KEYS:
        value = im.info.get(key)
        if value:
            out["xmp"] = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            break
    return out


def upright(im: Image.Image) -> tuple[Image.Image, int]:
    """The image as a viewer displays it (EXIF orientation applied, the tag reset) and that orientation."""
    try:
        orientation = int(im.getexif().get(EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError):  # unreadable EXIF: keep the raster as stored
        return im, 1
    if not 2 <= orientation <= 8:
        return im, 1
    return ImageOps.exif_transpose(im), orientation


def prepare(im: Image.Image) -> PreparedImage:
    """Normalise any Pillow image to (RGB, mode, alpha), upright, with its metadata."""
    check_single_frame(im, Path(getattr(im, "filename", "") or "image").name)
    im, orientation = upright(im)
    metadata = metadata_of(im)
    p = _prepare_pixels(im)
    p.metadata, p.orientation = metadata, orientation
    return p


def _prepare_pixels(im: Image.Image) -> PreparedImage:
    im = _to_8bit(im)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "1":
        im = im.convert("L")
    if im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBa", "La"):
        im = im.convert("RGBA" if im.mode == "RGBa" else "LA")
    if im.mode == "L":
        g = np.asarray(im, dtype=np.uint8)
        return PreparedImage(np.repeat(g[:, :, None], 3, axis=2), "L")
    if im.mode == "LA":
        a = np.asarray(im, dtype=np.uint8)
        return PreparedImage(np.repeat(a[:, :, :1], 3, axis=2), "LA", np.ascontiguousarray(a[:, :, 1]))
    if im.mode == "RGBA":
        a = np.asarray(im, dtype=np.uint8)
        return PreparedImage(np.ascontiguousarray(a[:, :, :3]), "RGBA", np.ascontiguousarray(a[:, :, 3]))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return PreparedImage(np.asarray(im, dtype=np.uint8).copy(), "RGB")


@contextlib.contextmanager
def _pixel_guard(max_pixels: int) -> Iterator[None]:
    """Make Pillow's decompression-bomb guard follow our limit (a larger --max-pixels must not trip
    Pillow's default, a smaller one is checked by us with a clear message) and silence its warning."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Open an image file; raise InputError with a clear reason if that is not possible."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"input file not found: {p}")
    if p.is_dir():
        raise InputError(f"input is a folder, not an image: {p}")
    try:
        with _pixel_guard(max_pixels), Image.open(p) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise InputError(f"image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels} "
                                 "(raise --max-pixels)")
            if im.mode in ("RGB", "RGBA") and any(";16" in str(getattr(t, "args", t)) for t in im.tile):
                # Pillow reduces 16-bit colour PNGs to 8 bits while loading: say so
                warnings.warn("16-bit input reduced to 8 bits per sample", LossyReductionWarning, stacklevel=2)
            check_single_frame(im, p.name)
            im.load()
            return prepare(im)
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"cannot read {p}: permission denied") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"image is above the limit of {max_pixels} pixels (raise --max-pixels): {exc}") from None
    except UnidentifiedImageError as exc:
        raise InputError(f"not a readable image: {p} ({exc.__class__.__name__})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"cannot decode image {p}: {exc}") from None


def finish(rgb: np.ndarray, mode: str, alpha: np.ndarray | None) -> Image.Image:
    """Rebuild the output image in the input's mode from decoded RGB (+ alpha)."""
    if mode in ("L", "LA"):
        grey = np.clip(np.round(rgb.astype(np.float32).mean(axis=2)), 0, 255).astype(np.uint8)
        if mode == "L":
            return Image.fromarray(grey, "L")
        return Image.fromarray(np.dstack([grey, alpha]), "LA")
    if mode == "RGBA":
        return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    return Image.fromarray(rgb, "RGB")


def encode_alpha(alpha: np.ndarray) -> bytes:
    """Lossless alpha: horizontal byte deltas then zlib (alpha planes are mostly flat)."""
    a = alpha.astype(np.uint8)
    delta = np.empty_like(a)
    delta[:, 0] = a[:, 0]
    delta[:, 1:] = a[:, 1:] - a[:, :-1]  # wraps modulo 256, undone exactly by cumsum
    return zlib.compress(delta.tobytes(), 9)


def decode_alpha(data: bytes, height: int, width: int) -> np.ndarray:
    """Inverse of encode_alpha; never inflates more than height * width bytes."""
    d = zlib.decompressobj()
    try:
        raw = d.decompress(data, height * width)
    except zlib.error:
        raise FormatError("alpha stream is corrupt") from None
    if len(raw) != height * width or d.unconsumed_tail or not d.eof:
        raise FormatError("alpha stream has the wrong size")
    delta = np.frombuffer(raw, dtype=np.uint8).reshape(height, width)
    return np.cumsum(delta, axis=1, dtype=np.uint64).astype(np.uint8)


def publish(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move a finished temporary file into place with the permissions a normal open() would give
    (temporary files are created private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, target)


def with_metadata(im: Image.Image, metadata: dict[str, bytes]) -> Image.Image:
    """Attach decoded metadata to an image's ``info`` (where Pillow and save() look for it)."""
    for key, value in metadata.items():
        im.info[key] = value
    return im


def metadata_save_args(im: Image.Image, fmt: str) -> dict:
    """Keyword arguments that make Pillow's save() write the image's ICC profile, EXIF and XMP in
    the formats that hold them (PNG keeps XMP in an iTXt chunk); other formats ignore them."""
    args = {k: im.info[k] for k in ("icc_profile", "exif") if im.info.get(k)}
    xmp = im.info.get("xmp")
    if xmp and fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else xmp)
        args["pnginfo"] = info
    elif xmp:
        args["xmp"] = xmp
    return args


def atomic_write(path: str | os.PathLike, data: bytes | None = None, image: Image.Image | None = None,
                 force: bool = False) -> None:
    """Write bytes or an image to `path` through a temporary file, so no partial output is ever left."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputError(f"output exists: {p} (use --force to overwrite)")
    if p.is_dir():
        raise OutputError(f"output is a folder: {p}")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder does not exist: {folder}")
    if image is not None:
        fmt = Image.registered_extensions().get(p.suffix.lower())
        if fmt is None or fmt not in Image.SAVE:
            raise OutputError(f"cannot write images with extension '{p.suffix}' (try .png)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write to {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if image is not None:
                try:
                    image.save(f, format=fmt, **metadata_save_args(image, fmt))
                except (OSError, KeyError, ValueError) as exc:
                    raise OutputError(f"cannot write a {image.mode} image as {p.suffix}: {exc}") from None
            else:
                f.write(data or b"")
        publish(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
