"""Draw the sample images that samples/demo.csv and samples/mistakes.csv use.

Run it from anywhere: ``python samples/make_images.py``. It writes samples/images/; the output
is the same on every run, so the committed images can be checked against it.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
OUT = HERE / "images"
SIZE = (640, 360)

# name -> (sky top colour, sky bottom colour, ground colour, what stands on the ground)
SCENES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int], str]] = {
    "beach.jpg": ((70, 140, 220), (250, 210, 160), (235, 205, 150), "sun"),
    "forest.jpg": ((120, 170, 200), (200, 220, 210), (40, 90, 50), "trees"),
    "city.jpg": ((20, 20, 60), (120, 80, 140), (30, 30, 40), "towers"),
    "desert.jpg": ((240, 170, 90), (250, 230, 180), (210, 160, 100), "dunes"),
    "mountain.jpg": ((90, 130, 190), (220, 230, 240), (80, 90, 100), "peaks"),
    "lighthouse.png": ((40, 60, 110), (230, 150, 110), (30, 70, 120), "tower"),
}


def gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    """A vertical gradient from top to bottom colour."""
    width, height = SIZE
    image = Image.new("RGB", SIZE)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / (height - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (width, y)], fill=colour)
    return image


def scene(name: str, rng: random.Random, grain: int = 20000) -> Image.Image:
    """One landscape: a sky gradient, a ground band and a few shapes."""
    top, bottom, ground, kind = SCENES[name]
    image = gradient(top, bottom)
    draw = ImageDraw.Draw(image)
    width, height = SIZE
    horizon = int(height * 0.65)
    draw.rectangle([0, horizon, width, height], fill=ground)
    for _ in range(7):
        x = rng.randrange(width)
        if kind == "sun":
            draw.ellipse([x - 30, 60, x + 30, 120], fill=(255, 230, 120))
            break
        if kind in ("trees", "peaks", "dunes"):
            peak = rng.randrange(horizon - 160, horizon - 40)
            shade = tuple(max(0, c - rng.randrange(10, 40)) for c in ground)
            draw.polygon([(x - 60, horizon), (x, peak), (x + 60, horizon)], fill=shade)
        else:
            tall = rng.randrange(80, 220)
            draw.rectangle([x, horizon - tall, x + 40, horizon], fill=(200, 200, 190))
    # Fine grain makes the files realistic in size and keeps the encoders honest.
    for _ in range(grain):
        x, y = rng.randrange(width), rng.randrange(height)
        r, g, b = image.getpixel((x, y))  # type: ignore[misc]  # an RGB pixel is a 3-tuple
        j = rng.randrange(-18, 18)
        image.putpixel((x, y), (max(0, r + j), max(0, g + j), max(0, b + j)))
    return image.filter(ImageFilter.SMOOTH)


def main() -> None:
    """Write every sample image."""
    rng = random.Random(2024)
    OUT.mkdir(exist_ok=True)
    for name in SCENES:
        # PNG compresses grain badly; less of it keeps the PNG samples small.
        image = scene(name, rng, grain=1500 if name.endswith(".png") else 20000)
        if name.endswith(".png"):
            image.save(OUT / name, optimize=True)
        else:
            image.save(OUT / name, quality=94)
    # Mistakes: an image too small for the API, and one with see-through pixels.
    scene("forest.jpg", rng).resize((240, 135)).save(OUT / "thumbnail.jpg", quality=88)
    logo = scene("beach.jpg", rng, grain=1500).convert("RGBA")
    alpha = Image.new("L", SIZE, 255)
    ImageDraw.Draw(alpha).ellipse([170, 30, 470, 330], fill=0)
    logo.putalpha(alpha)
    logo.save(OUT / "logo-transparent.png", optimize=True)
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(HERE)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
