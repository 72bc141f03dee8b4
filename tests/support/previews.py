"""Images and PDFs made by the tests themselves (Pillow), the thumbnail endpoint, and a
worker process whose peak memory is read when it exits."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image
from rq.job import Job

from app.broker import get_preview_queue
from tests.support.client import Auth
from tests.support.pipeline import process_env

ROOT = Path(__file__).resolve().parents[2]


def picture(size: tuple[int, int], colour: tuple[int, int, int] = (200, 80, 40)) -> Image.Image:
    """An RGB image with a gradient, so every encoder has something to encode."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    return Image.blend(image, Image.new("RGB", size, colour), 0.5)


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    """The image saved in a format (JPEG, PNG, GIF, WEBP, PDF)."""
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def rotated_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG stored `size` wide and high whose EXIF says to turn it 90° (Orientation 6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(picture(size), "JPEG", exif=exif.tobytes())


def pdf(pages: int, size: tuple[int, int] = (850, 1100)) -> bytes:
    """A real PDF of `pages` pages (Pillow writes one image per page)."""
    first, *rest = [picture(size, (40, 90 + page % 100, 200)) for page in range(pages)]
    return encoded(first, "PDF", save_all=True, append_images=rest)


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A small PNG whose header declares `width` x `height` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)
    data = b"".join(compressor.compress(row) for _ in range(50)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def thumbnail(auth: Auth, file_id: str, **query: str) -> Any:
    """GET /api/files/<id>/thumbnail with a query."""
    return auth.client.get(f"/api/files/{file_id}/thumbnail", query_string=query)


def thumbnail_image(auth: Auth, file_id: str, size: str = "small") -> Image.Image:
    """The thumbnail decoded, expecting 200 image/webp."""
    response = thumbnail(auth, file_id, size=size)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "image/webp"
    image = Image.open(io.BytesIO(response.get_data()))
    image.load()
    return image


def worker_peak_mib(app: Flask, **settings: str) -> tuple[int, str]:
    """Run `manage.py worker --burst` until the queues are empty; the highest peak RSS (MiB)
    its previews jobs recorded, and its output."""
    run = subprocess.run(
        [sys.executable, "manage.py", "worker", "--burst"],
        cwd=ROOT,
        env=process_env(app, **settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    redis = app.extensions["redis"]
    with app.app_context():
        registry = get_preview_queue(redis).finished_job_registry
        peaks = [
            int(Job.fetch(job_id, connection=redis).meta["peak_rss_mib"])
            for job_id in registry.get_job_ids()
        ]
    assert peaks, f"no previews job ran: {output}"
    return max(peaks), output
