"""A fake Djangoplicity archive on a real HTTP server (pytest-httpserver, 127.0.0.1).

Search pages carry the ``var images = [...]`` JavaScript literal of the real sites (unquoted
keys), records the ``api/json`` fields toasty reads, and the images are seeded JPEGs without
AVM tags (the record places them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pytest_httpserver import HTTPServer

PAGE = """<!DOCTYPE html>
<html><head><title>Images | {channel}</title></head>
<body>
<div id="archive"></div>
<script>
var images = [
{entries}
];
var page = {n};
</script>
</body></html>
"""


def bytes_repr(text: str) -> str:
    """``text`` as the repr of its UTF-8 bytes, as some installations send it."""
    return repr(text.encode("utf-8"))


@dataclass
class FakeArchive:
    """Images by id, in pages of ``per_page``; ``records`` hold each id's ``api/json``."""

    server: HTTPServer
    folder: Path
    per_page: int = 2
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/public/images/")

    def add(
        self,
        image_id: str,
        width: int,
        height: int,
        rng: np.random.Generator,
        *,
        reference: tuple[int, int] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """An image of ``width`` x ``height`` whose record describes a picture of
        ``reference`` pixels (default: the same size), with TAN fields unless overridden."""
        yy, xx = np.mgrid[0:height, 0:width]
        pixels = np.stack(
            [(xx * 3) % 256, (yy * 5) % 256, rng.integers(0, 255, (height, width))], axis=-1
        ).astype(np.uint8)
        path = self.folder / f"{image_id}.jpg"
        Image.fromarray(pixels).save(path, "JPEG", quality=92)
        self.bodies[image_id] = path.read_bytes()
        ref_w, ref_h = reference or (width, height)
        record: dict[str, Any] = {
            "Title": f"Nebula {image_id}",
            "Credit": "ESO/A. Astronomer & <b>team</b>",
            "Description": f"A <i>nebula</i> & its stars ({image_id}).",
            "ReferenceURL": f"https://www.eso.org/public/images/{image_id}/",
            "Date": "2023-04-05T12:00:00",
            "Resources": [
                {"ResourceType": "Large", "URL": self.server.url_for(f"/media/{image_id}-l.jpg")},
                {"ResourceType": "Original", "URL": self.server.url_for(f"/media/{image_id}.jpg")},
            ],
            "Spatial.CoordsystemProjection": "TAN",
            "Spatial.ReferenceValue": [83.822, -5.391],
            "Spatial.ReferenceDimension": [ref_w, ref_h],
            "Spatial.ReferencePixel": [ref_w / 2 + 10.5, ref_h / 2 - 20.25],
            "Spatial.Scale": [-2.5e-4 * width / ref_w, 2.5e-4 * width / ref_w],
            "Spatial.Rotation": 12.5,
        }
        record.update(fields)
        self.records[image_id] = record
        return record

    def serve(self, *, broken_record: str | None = None) -> None:
        """Register every page (then a 404), record and image on the server."""
        ids = list(self.records)
        pages = [ids[i : i + self.per_page] for i in range(0, len(ids), self.per_page)]
        for n, page in enumerate(pages, start=1):
            entries = ",\n".join(
                f"    {{\n        id: '{i}',\n        title: 'Nebula {i}',\n"
                f"        width: 640,\n        height: 480,\n"
                f"        src: '/media/thumbs/{i}.jpg',\n        url: '/public/images/{i}/',\n"
                "        potw: ''\n    }"
                for i in page
            )
            html = PAGE.format(channel="ESO", entries=entries, n=n)
            self.server.expect_request(
                f"/public/images/archive/search/page/{n}/", query_string="type=Observation"
            ).respond_with_data(html, content_type="text/html")
        self.server.expect_request(
            f"/public/images/archive/search/page/{len(pages) + 1}/",
            query_string="type=Observation",
        ).respond_with_data("Not found", status=404)
        for image_id, record in self.records.items():
            body = "{ not json" if image_id == broken_record else json.dumps(record)
            self.server.expect_request(f"/public/images/{image_id}/api/json/").respond_with_data(
                body, content_type="application/json"
            )
            self.server.expect_request(f"/media/{image_id}.jpg").respond_with_data(
                self.bodies[image_id], content_type="image/jpeg"
            )

    def requests_to(self, path_part: str) -> int:
        return sum(1 for req, _ in self.server.log if path_part in req.path)
