"""Points of a rate-distortion sweep that another setting beats outright (no more bytes, higher PSNR).

A codec's size need not grow with its quality setting: at the bottom of lcodec's ladder a higher level
can code to fewer bytes and a better picture. Such a point is never the right choice, so the image
bench lists them rather than let the curve hide them.
"""

from __future__ import annotations

from typing import Any


def dominated(sizes: list[float], psnrs: list[float]) -> list[tuple[int, int]]:
    """(i, j) pairs where point j has at most point i's size and a higher PSNR (j the best such)."""
    out = []
    for i, (si, qi) in enumerate(zip(sizes, psnrs)):
        if si is None or qi is None:
            continue
        better = [j for j, (sj, qj) in enumerate(zip(sizes, psnrs))
                  if j != i and sj is not None and qj is not None and sj <= si and qj > qi]
        if better:
            out.append((i, max(better, key=lambda j: psnrs[j])))
    return out


def non_monotonic_note(results: dict[str, dict[str, Any]], examples: int = 3) -> str:
    """One sentence per codec with dominated points on any image of an image bench (empty if none)."""
    parts = []
    for name, data in sorted(results.items()):
        found = []
        for image, item in sorted(data.get("per_image", {}).items()):
            values = item.get("quality", [])
            for i, j in dominated(item.get("bytes", []), item.get("psnr-rgb", [])):
                found.append(f"{image} {values[i]:g}: {item['bytes'][i]:,} B {item['psnr-rgb'][i]:.2f} dB, "
                             f"{values[j]:g}: {item['bytes'][j]:,} B {item['psnr-rgb'][j]:.2f} dB")
        if found:
            more = f"; {len(found) - examples} more" if len(found) > examples else ""
            parts.append(f"{name} {len(found)} ({'; '.join(found[:examples])}{more})")
    if not parts:
        return ""
    return ("Non-monotonic points (another setting of the same codec gives no more bytes and a higher PSNR "
            "on the same image; never worth choosing): " + "; ".join(parts) + ".")
