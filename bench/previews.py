"""The `previews` scenario's measuring process: makes the previews of generated pictures
and PDFs as the previews job does (decode, fit, WebP), in a fresh process, and prints the
seconds and the process's peak RSS as JSON. One process per case, so each peak is its own."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from PIL import Image

from app.files import previews

# A worker's budget, and the limit the 100-megapixel case is measured under (the default,
# 50,000,000, gives such a photo no preview at all).
MAX_PIXELS = 120_000_000


def picture(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like RGB picture (a gradient with some noise) of a given size."""
    noise = Image.effect_noise((width, height), 40 + seed % 20).convert("RGB")
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    return Image.blend(gradient, noise, 0.4)


def make_inputs(folder: Path, photos: int) -> None:
    """`photos` JPEGs of 12 MP, one of 100 MP, and a PDF of 100 pages, written once."""
    folder.mkdir(parents=True, exist_ok=True)
    base = picture(4000, 3000, 1)
    for index in range(photos):
        path = folder / f"photo-{index:03d}.jpg"
        if not path.exists():
            base.rotate(index % 7, expand=False).save(path, "JPEG", quality=88)
    huge = folder / "huge.jpg"
    if not huge.exists():
        picture(10_000, 10_000, 2).save(huge, "JPEG", quality=85)
    document = folder / "document.pdf"
    if not document.exists():
        pages = [picture(850, 1100, n).convert("RGB") for n in range(100)]
        pages[0].save(document, "PDF", save_all=True, append_images=pages[1:])


def peak_mib() -> int:
    """This process's VmHWM, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def preview(path: Path, mime_type: str) -> None:
    """Both previews of one file, as the job makes them (storage aside)."""
    with open(path, "rb") as reader:
        large = previews.render(reader, mime_type, MAX_PIXELS)
    for image in (large, previews.fitted(large, previews.SIZES["small"])):
        previews.encoded(image)


def main() -> None:
    """`python -m bench.previews FOLDER CASE`: CASE is photos, huge or pdf."""
    folder, case = Path(sys.argv[1]), sys.argv[2]
    if case == "inputs":
        make_inputs(folder, int(sys.argv[3]))
        return
    files = {
        "photos": [(p, "image/jpeg") for p in sorted(folder.glob("photo-*.jpg"))],
        "huge": [(folder / "huge.jpg", "image/jpeg")],
        "pdf": [(folder / "document.pdf", "application/pdf")],
    }[case]
    before = peak_mib()
    started = time.perf_counter()
    for path, mime_type in files:
        preview(path, mime_type)
    seconds = time.perf_counter() - started
    json.dump(
        {"files": len(files), "seconds": seconds, "peak_mib": peak_mib(), "start_mib": before},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
