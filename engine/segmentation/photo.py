"""Any photo a user might hand over -> the 8-bit RGB image the network expects, and labels -> an overlay.

Why not just `Image.open(p).convert("RGB")`: that turns 16-bit greyscale white (values above 255 clip),
puts transparent pixels' hidden colours (often black) in front of the network, ignores the EXIF
rotation phones record, and lets a truncated file or a decompression bomb fail deep inside Pillow.
Here each of those is handled or becomes a SegmentationInputError that names the file and the problem.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class SegmentationInputError(ValueError):
    """An image that cannot be segmented; the message says why."""


def load_photo(path: str | Path, max_pixels: int = 100_000_000) -> Image.Image:
    """The fully decoded photo as RGB, upright (EXIF orientation applied), at most `max_pixels` pixels."""
    path = Path(path)
    if not path.is_file():
        raise SegmentationInputError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise SegmentationInputError(
                        f"{path}: {width} x {height} is too large to segment (at most {max_pixels // 1_000_000} "
                        "megapixels); scale it down first"
                    )
                image.load()
                image = ImageOps.exif_transpose(image)
                return to_rgb(image)
    except UnidentifiedImageError:
        raise SegmentationInputError(f"{path}: not an image file Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise SegmentationInputError(f"{path}: too large to segment ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, SegmentationInputError):
            raise
        raise SegmentationInputError(f"{path}: damaged or truncated image ({exc})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: transparency flattened onto white, 16/32-bit and float greyscale scaled, not clipped."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = float(values.max()) if values.size else 0.0
        if image.mode.startswith("I;16") or 255 < top <= 65535:
            values = values / 257.0
        elif top > 65535 or float(values.min()) < 0:
            low = float(values.min())
            values = (values - low) * (255.0 / max(top - low, 1e-12))
        elif image.mode == "F" and top <= 1.0:
            values = values * 255.0
        grey = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
        return grey.convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def overlay_image(
    photo: Image.Image, labels: np.ndarray, palette: tuple[tuple[int, int, int], ...], opacity: float = 0.55
) -> Image.Image:
    """The photo with every non-background pixel tinted in its class colour (background left as it is)."""
    rgb = np.asarray(photo.convert("RGB"), dtype=np.float32)
    colours = np.zeros((256, 3), np.float32)
    colours[: len(palette)] = palette
    tint = colours[labels]
    mask = (labels != 0)[..., None]
    mixed = np.where(mask, (1 - opacity) * rgb + opacity * tint, rgb)
    return Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8), "RGB")
