"""Training data for the temporal entropy model: latents of consecutive video frames.

The transforms are frozen while the temporal model trains, so every frame of every clip goes
through g_a once, and training samples are random latent-domain crops of runs of consecutive frames
(three, t-2..t, or an I-frame and K P-frames). Latents are kept in float16 on the CPU (about 1.2 MB per 720p frame).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import InputError
from ..image_model import ImageModel
from ..transforms import HYPER_STRIDE, from_pixels, pad_to_multiple
from ..video_io import is_video_path, open_video


def list_videos(folder: str | Path) -> list[Path]:
    """Video files directly in (or below) `folder`, sorted for reproducibility."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_video_path(p))
    if not files:
        raise FileNotFoundError(f"no videos (mp4/mkv/avi/...) in {folder}")
    return files


class LatentClips:
    """Ungained latents of the frames of every clip in a folder, and random windows of consecutive frames."""

    def __init__(self, folder: str | Path, model: ImageModel, skip_first: int = 0, max_frames: int | None = None,
                 device: torch.device | str = "cpu", progress: bool = True) -> None:
        self.clips: list[torch.Tensor] = []  # [T, M, h, w] float16
        self.names: list[str] = []
        dev = torch.device(device)
        for path in list_videos(folder):
            src = open_video(path, start=skip_first, frames=max_frames)
            lat = []
            bar = tqdm(src.frames(), total=src.total_hint, desc=f"latents {path.name}", disable=not progress,
                       leave=False)
            try:
                for rgb in bar:
                    x = from_pixels(rgb, dev)
                    with torch.no_grad():
                        lat.append(model.g_a(pad_to_multiple(x.unsqueeze(0), HYPER_STRIDE))[0].half().cpu())
            except InputError:  # a clip with no frames left after skip_first is skipped
                if lat:
                    raise
            if len(lat) >= 3:
                self.clips.append(torch.stack(lat))
                self.names.append(path.name)
        if not self.clips:
            raise ValueError(f"no clip in {folder} has 3 or more frames to train on")

    @property
    def frames(self) -> int:
        return sum(c.shape[0] for c in self.clips)

    def window(self, size: int, crop: int, length: int, gen: torch.Generator) -> list[torch.Tensor]:
        """`length` consecutive ungained latents [B, M, c, c] (oldest first), all from one clip that
        has that many frames; c <= crop, a multiple of 4."""
        weights = torch.tensor([max(0, c.shape[0] - length + 1) for c in self.clips], dtype=torch.float64)
        if length < 1 or not weights.sum():
            raise ValueError(f"no clip has {length} frames to train on")
        k = int(torch.multinomial(weights, 1, generator=gen))
        clip = self.clips[k]
        t_count, _, h, w = clip.shape
        c_h = max(4, min(crop, h) // 4 * 4)
        c_w = max(4, min(crop, w) // 4 * 4)
        out: list[list[torch.Tensor]] = [[] for _ in range(length)]
        for _ in range(size):
            t = int(torch.randint(length - 1, t_count, (1,), generator=gen))
            r = int(torch.randint(0, h - c_h + 1, (1,), generator=gen))
            c = int(torch.randint(0, w - c_w + 1, (1,), generator=gen))
            for j in range(length):
                out[j].append(clip[t - length + 1 + j, :, r : r + c_h, c : c + c_w])
        return [torch.stack(o).float() for o in out]
