"""An animated GIF upload loses its metadata and keeps its timing, as other images do."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image, ImageSequence


def test_an_animated_gif_loses_its_comment_and_keeps_each_frames_timing(
    client: TestClient, editor: dict[str, str]
) -> None:
    frames = [Image.new("RGB", (1500, 500), colour) for colour in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 800, 300],
        loop=0,
        comment=b"Taken by SecretCam at 51.5N 0.1W",
    )
    assert b"SecretCam" in out.getvalue()
    resp = client.post(
        "/media", files={"file": ("a.gif", out.getvalue(), "image/gif")}, headers=editor
    )
    assert resp.status_code == 201, resp.text
    served = client.get(f"/media/{resp.json()['name']}").content
    assert b"SecretCam" not in served
    image = Image.open(io.BytesIO(served))
    assert image.size == (1200, 400) and getattr(image, "n_frames", 1) == 3
    assert "comment" not in image.info
    assert [f.info.get("duration") for f in ImageSequence.Iterator(image)] == [100, 800, 300]
