"""Text recognition, measured: character accuracy and pages per second.

Pages of the eval corpus (bench/eval/en.json and zh.json) are drawn as a scanner would
make them: text rendered at 150 and 300 dpi, a slight rotation (0.5-1.5 degrees) and
speckle noise. Each scan goes through the app's own path twice:

- as an image file (PNG), read by ``rag.indexing.loaders`` as it would be after a drop;
- inside a PDF with no text layer, which the PDF loader renders at ``ocr.DPI`` and reads.

Character accuracy is 1 - (edit distance / reference length), counted on the text without
whitespace (a line break where the page had a space is not an error). ``--sweep`` repeats
the PDF route at other render resolutions and detector limits, to choose ``ocr.DPI`` and
``ocr.MAX_SIDE``.

    python bench/ocr.py [--pages 3] [--sweep]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402

from rag.documents import LoadResult  # noqa: E402
from rag.indexing import loaders  # noqa: E402
from rag.indexing.loaders import ocr  # noqa: E402

FONTS = {
    "en": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "zh": "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
}


def page_texts(language: str, count: int) -> list[str]:
    """``count`` pages of about 1,000 characters (English) or 500 (Chinese) from the eval corpus."""
    documents = list(json.loads((HERE / "eval" / f"{language}.json").read_text("utf-8"))["documents"].values())
    size = 1000 if language == "en" else 500
    pages, current = [], ""
    for text in documents:
        current += text.replace("\n\n", "\n") + "\n"
        if len(current) >= size:
            pages.append(current[:size].rsplit("\n", 1)[0] if "\n" in current[:size] else current[:size])
            current = ""
        if len(pages) == count:
            break
    return pages


def scan(text: str, language: str, dpi: int, rng: random.Random) -> Image.Image:
    """An A4 page of ``text`` in 11-point type, as a scanner at ``dpi`` would give it."""
    width, height = int(8.27 * dpi), int(11.69 * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONTS[language], round(11 / 72 * dpi))
    wrap = 80 if language == "en" else 38
    y = dpi
    for paragraph in text.split("\n"):
        lines = textwrap.wrap(paragraph, wrap) if language == "en" else [paragraph[i : i + wrap] for i in range(0, len(paragraph), wrap)]
        for line in lines:
            draw.text((dpi, y), line, font=font, fill=rng.randint(0, 60))
            y += round(16 / 72 * dpi)
        y += round(6 / 72 * dpi)
    image = image.rotate(rng.uniform(0.5, 1.5) * rng.choice((-1, 1)), resample=Image.Resampling.BILINEAR, fillcolor=255)
    noise = Image.effect_noise(image.size, 40).point(lambda v: 0 if v < 18 else 255)  # dark specks
    image = Image.composite(image, noise, noise)
    return image.filter(ImageFilter.GaussianBlur(0.4))


def distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def accuracy(reference: str, read: str) -> float:
    ref, got = "".join(reference.split()), "".join(read.split())
    return max(0.0, 1 - distance(ref, got) / max(1, len(ref)))


def read(path: Path) -> tuple[str, float]:
    result = LoadResult()
    started = time.perf_counter()
    text = "".join(section.text for section in loaders.load(path, result))
    return text, time.perf_counter() - started


def to_pdf(image: Image.Image, path: Path, dpi: int) -> Path:
    image.convert("RGB").save(path, "PDF", resolution=float(dpi))
    return path


def run(pages: dict[str, list[str]], scans: dict[tuple[str, int], list[Image.Image]], folder: Path, route: str) -> None:
    print(f"\n{route}   (render at {ocr.DPI} dpi, detector up to {ocr.MAX_SIDE} px)" if route == "pdf" else f"\n{route}")
    print(f"{'language':9}{'scan dpi':>9}{'pages':>7}{'accuracy':>10}{'worst':>8}{'s/page':>9}")
    for (language, dpi), images in scans.items():
        scores, seconds = [], 0.0
        for number, (text, image) in enumerate(zip(pages[language], images, strict=True)):
            path = folder / f"{language}-{dpi}-{number}.{'png' if route == 'image' else 'pdf'}"
            if route == "image":
                image.save(path, dpi=(dpi, dpi))
            else:
                to_pdf(image, path, dpi)
            got, took = read(path)
            scores.append(accuracy(text, got))
            seconds += took
        print(f"{language:9}{dpi:>9}{len(images):>7}{sum(scores) / len(scores):>10.1%}{min(scores):>8.1%}{seconds / len(images):>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3, help="pages per language and resolution")
    parser.add_argument("--sweep", action="store_true", help="also try other render resolutions and detector limits")
    args = parser.parse_args()
    rng = random.Random(7)
    pages = {language: page_texts(language, args.pages) for language in FONTS}
    scans = {(language, dpi): [scan(t, language, dpi, rng) for t in pages[language]] for language in FONTS for dpi in (150, 300)}
    import onnxruntime

    print(f"RapidOCR (PP-OCRv4, onnxruntime {onnxruntime.__version__}), {args.pages} page(s) per row")
    ocr.recognize(Image.new("RGB", (64, 64), "white"))  # the engine's start is not a page's cost
    with tempfile.TemporaryDirectory() as tmp:
        run(pages, scans, Path(tmp), "image")
        run(pages, scans, Path(tmp), "pdf")
        if args.sweep:
            for dpi, side in ((200, 2000), (300, 2400), (400, 2000)):
                ocr.DPI, ocr.MAX_SIDE, ocr._engine = dpi, side, None
                run(pages, scans, Path(tmp), "pdf")


if __name__ == "__main__":
    main()
