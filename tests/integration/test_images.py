"""Images: upload (API and console), stored by hash, resized, stripped, served; rendering."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from app.console import block_form
from app.context import Context, build_context
from app.issues.markdown_format import parse_issue_markdown, to_markdown
from app.main import create_app
from app.media.images import MAX_PIXELS
from app.rendering.blocks import parse_blocks
from tests.console_support import add_account, sign_in
from tests.helpers import new_issue

ORIENTATION = 0x0112
MAKE = 0x010F


def photo(width: int, height: int, fmt: str = "JPEG", *, orientation: int | None = None) -> bytes:
    """Return an image with EXIF (camera make, optional orientation) in the given format."""
    image = Image.new("RGB", (width, height), (200, 40, 40))
    # A distinct left half, to see which way the picture ended up.
    image.paste((20, 20, 220), (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[MAKE] = "SecretCam"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif.tobytes())
    return out.getvalue()


def upload(client: TestClient, headers: dict[str, str], data: bytes, name: str = "a.jpg") -> Any:
    """POST one file to /media."""
    return client.post("/media", files={"file": (name, data, "image/jpeg")}, headers=headers)


def test_upload_is_resized_stripped_stored_by_hash_and_served_immutable(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    original = photo(3000, 2000)
    assert Image.open(io.BytesIO(original)).getexif()[MAKE] == "SecretCam"

    resp = upload(client, editor, original)

    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["width"], body["height"]) == (1200, 800)
    assert body["content_type"] == "image/jpeg"
    name = body["name"]
    assert re.fullmatch(r"[0-9a-f]{64}\.jpg", name)
    assert body["url"] == f"http://testserver/media/{name}"
    stored = Path(ctx.settings.var_dir) / "media" / name
    data = stored.read_bytes()
    assert hashlib.sha256(data).hexdigest() == name.split(".")[0]
    saved = Image.open(io.BytesIO(data))
    assert saved.size == (1200, 800)
    assert len(saved.getexif()) == 0  # the camera's make (and everything else) is gone
    assert b"SecretCam" not in data

    served = client.get(f"/media/{name}")
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]
    assert "immutable" in served.headers["cache-control"]
    assert "max-age=31536000" in served.headers["cache-control"]
    again = client.get(f"/media/{name}", headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304

    # The same upload again is the same name: stored once.
    assert upload(client, editor, original).json()["name"] == name
    assert len(list(stored.parent.glob("*.jpg"))) == 1


def test_orientation_is_applied_before_exif_is_dropped(
    client: TestClient, editor: dict[str, str]
) -> None:
    # Orientation 6: the camera was turned; viewers rotate 90° clockwise to show it upright.
    resp = upload(client, editor, photo(400, 200, orientation=6))
    assert resp.status_code == 201, resp.text
    assert (resp.json()["width"], resp.json()["height"]) == (200, 400)


def test_png_webp_and_gif_keep_their_type_and_lose_their_metadata(
    client: TestClient, editor: dict[str, str]
) -> None:
    for fmt, ext in (("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")):
        image = Image.new("RGB", (1500, 300), (10, 120, 10))
        exif = Image.Exif()
        exif[MAKE] = "SecretCam"
        out = io.BytesIO()
        image.save(out, format=fmt, **({} if fmt == "GIF" else {"exif": exif.tobytes()}))
        resp = upload(client, editor, out.getvalue(), name=f"x.{ext}")
        assert resp.status_code == 201, resp.text
        assert resp.json()["name"].endswith(f".{ext}")
        assert resp.json()["width"] == 1200
        served = client.get(f"/media/{resp.json()['name']}")
        assert served.headers["content-type"] == f"image/{ext}"
        assert b"SecretCam" not in served.content
        assert len(Image.open(io.BytesIO(served.content)).getexif()) == 0


def test_an_animated_gif_stays_animated(client: TestClient, editor: dict[str, str]) -> None:
    frames = [Image.new("RGB", (1500, 500), colour) for colour in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=200)
    resp = upload(client, editor, out.getvalue(), name="a.gif")
    assert resp.status_code == 201, resp.text
    served = Image.open(io.BytesIO(client.get(f"/media/{resp.json()['name']}").content))
    assert served.size == (1200, 400)
    assert getattr(served, "n_frames", 1) == 3


def test_a_text_file_named_png_is_refused_by_its_content(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    resp = client.post(
        "/media",
        files={"file": ("cat.png", b"<svg onload=alert(1)>not an image</svg>", "image/png")},
        headers=editor,
    )
    assert resp.status_code == 422
    assert "not a JPEG, PNG, GIF or WebP" in resp.json()["detail"]
    assert not (Path(ctx.settings.var_dir) / "media").exists()


def test_a_decompression_bomb_is_refused(client: TestClient, editor: dict[str, str]) -> None:
    # A 1-bit PNG of 10,000 x 10,000 pixels: tiny on disk, 100 megapixels decoded.
    image = Image.new("1", (10_000, 10_000))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    assert len(out.getvalue()) < 200_000
    assert MAX_PIXELS < 10_000 * 10_000

    resp = upload(client, editor, out.getvalue(), name="bomb.png")

    assert resp.status_code == 422
    assert "too large in pixels" in resp.json()["detail"]


def test_an_upload_over_the_cap_is_413(client: TestClient, editor: dict[str, str]) -> None:
    cap = client.app.state.ctx.settings.media_max_bytes  # type: ignore[attr-defined]
    resp = upload(client, editor, b"\xff\xd8" + b"0" * cap, name="big.jpg")
    assert resp.status_code == 413
    assert "at most 10 MB" in resp.json()["detail"]


def test_upload_needs_an_editor(client: TestClient) -> None:
    resp = upload(client, {}, photo(10, 10))
    assert resp.status_code == 401


def test_unknown_or_malformed_media_names_are_404(client: TestClient) -> None:
    assert client.get("/media/" + "a" * 64 + ".jpg").status_code == 404
    assert client.get("/media/..%2Fsecret_key").status_code == 404
    assert client.get("/media/abc.svg").status_code == 404


def test_console_upload_needs_session_and_csrf(client: TestClient, ctx: Context) -> None:
    add_account(ctx)
    csrf = sign_in(client)
    files = {"file": ("a.jpg", photo(50, 50), "image/jpeg")}

    refused = client.post("/editor/media", files=files)
    assert refused.status_code == 403

    resp = client.post("/editor/media", files=files, headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 201, resp.text
    assert resp.json()["url"].startswith("http://testserver/media/")

    bad = client.post(
        "/editor/media",
        files={"file": ("a.png", b"hello", "image/png")},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status_code == 422
    assert "not a JPEG" in bad.json()["detail"]


IMAGE_BLOCKS: list[dict[str, Any]] = [
    {
        "type": "lead",
        "title": "Pictures today",
        "body": "A ![small chart](https://example.org/c.png) here.",
    },
    {
        "type": "image",
        "url": "https://example.org/cat.jpg",
        "alt": "A cat asleep on a keyboard",
        "caption": "Our editor's cat",
        "link": "https://example.org/cats",
    },
]


def test_images_render_in_email_web_and_text(client: TestClient, editor: dict[str, str]) -> None:
    issue = new_issue(client, editor, blocks=IMAGE_BLOCKS)
    email = client.get(f"/issues/{issue['id']}/preview", headers=editor).text
    assert re.search(r'<img[^>]*alt="A cat asleep on a keyboard"', email)
    assert re.search(r'<img[^>]*src="https://example.org/cat.jpg"', email)
    assert re.search(r'<img[^>]*alt="small chart"', email)
    assert re.search(r"Our editor(&#39;|')s\s+cat", email)  # the caption (lines are wrapped)

    ctx: Context = client.app.state.ctx  # type: ignore[attr-defined]
    blocks = parse_blocks(IMAGE_BLOCKS)
    web = ctx.renderer.web_version(subject="S", preheader="", slug="s", blocks=blocks)
    assert re.search(r'<img[^>]*src="https://example.org/cat.jpg"', web)

    text = ctx.renderer.compile_issue(subject="S", preheader="", slug="s", blocks=blocks).text
    assert "[Image: A cat asleep on a keyboard] [2]" in text
    assert "[Image: small chart] [1]" in text
    assert "[2] https://example.org/cat.jpg" in text
    assert "[3] https://example.org/cats" in text


def test_image_block_round_trips_through_markdown() -> None:
    blocks = parse_blocks(
        [
            IMAGE_BLOCKS[1],
            {"type": "image", "url": "https://example.org/b.png", "alt": "brackets ] here"},
            {"type": "image", "url": "https://example.org/c.png"},
        ]
    )
    text = to_markdown(subject="Images", blocks=blocks)
    assert "## Our editor's cat {image}\nLink: https://example.org/cats" in text
    assert "![A cat asleep on a keyboard](https://example.org/cat.jpg)" in text
    assert parse_blocks(parse_issue_markdown(text).blocks) == blocks


def test_an_image_block_must_point_at_a_web_url(client: TestClient, editor: dict[str, str]) -> None:
    resp = client.post(
        "/issues",
        json={"subject": "x", "blocks": [{"type": "image", "url": "mailto:a@b.c", "alt": "x"}]},
        headers=editor,
    )
    assert resp.status_code == 422
    assert "http(s) URL of an image" in resp.json()["detail"]


def test_the_block_editor_edits_an_image_block() -> None:
    block = parse_blocks([IMAGE_BLOCKS[1]])[0]
    form = block_form.to_form(block)
    assert form.values["alt"] == "A cat asleep on a keyboard"
    assert parse_blocks([block_form.to_block(form, 1)]) == [block]
    assert set(block_form.blank("image").values) == {"url", "alt", "caption", "link"}


def test_the_upload_box_names_the_configured_size_limit(ctx: Context) -> None:
    smaller = ctx.settings.model_copy(update={"media_max_bytes": 2 * 1024 * 1024})
    app = create_app(smaller, context=build_context(smaller, engine=ctx.engine))
    add_account(ctx)
    with TestClient(app) as client:
        sign_in(client)
        page = client.get("/editor/issues/new")
    assert page.status_code == 200
    assert "up to 2 MB." in page.text and "10 MB" not in page.text
