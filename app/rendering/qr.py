"""The subscribe QR code as a small two-colour PNG."""

from __future__ import annotations

import io

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

INK = (31, 35, 40)  # #1f2328: dark, not pure black, so dark-mode inversion stays legible
PAPER = (250, 248, 243)  # #faf8f3: off-white, matches the email's card colour
BOX = 8  # pixels per module: crisp when shown at half size on high-density screens
BORDER = 2  # modules of quiet zone; the surrounding card supplies more


def qr_png(data: str) -> bytes:
    """Return a palette PNG encoding data."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=1, border=BORDER)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix)
    image = Image.new("P", (size, size))
    image.putpalette([*PAPER, *INK])
    image.putdata([1 if cell else 0 for row in matrix for cell in row])
    image = image.resize((size * BOX, size * BOX), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True, bits=1)
    return buffer.getvalue()
