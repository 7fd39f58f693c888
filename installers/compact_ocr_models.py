"""RapidOCR's models for the package, their weights stored as float16 (16 MB become 8 MB; 7 MB
less in the .deb). Run before PyInstaller, beside export_embedder.py:

    python installers/compact_ocr_models.py build/ocr

They still compute in float32 (rag.onnx_encoder.store_weights_half). The build stops unless
they read the same lines as the originals from pages of English and of Chinese.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rag.onnx_encoder import store_weights_half

# Page lines the halved models must read exactly as the originals do.
LINES = {
    "en": ["Scanned invoice 2026", "The bearings need oil every 200 operating hours.", "Total due: 1,482.50 EUR"],
    "zh": ["第三季度营业收入为2.87亿元", "同比增长12%", "毛利率为39.2%"],
}
# Fonts that draw Chinese, where the build machine has one (Debian's packages, macOS, Windows);
# else the English page alone.
CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/System/Library/Fonts/Hiragino Sans GB.ttc", "C:/Windows/Fonts/msyh.ttc")


def _page(lines: list[str], font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> np.ndarray:
    image = Image.new("RGB", (1600, 120 * len(lines) + 80), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((60, 60 + 120 * row), line, font=font, fill="black")
    return np.asarray(image)


def _read(engine: object, page: np.ndarray) -> list[str]:
    found, _ = engine(page)  # type: ignore[operator]
    return [text for _, text, _ in found or []]


def compact(folder: Path) -> None:
    """Write halved copies of RapidOCR's models into ``folder``, checked against the originals."""
    import rapidocr_onnxruntime
    from rapidocr_onnxruntime import RapidOCR

    models = Path(rapidocr_onnxruntime.__file__).parent / "models"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for model in sorted(models.glob("*.onnx")):
        shutil.copyfile(model, folder / model.name)
        store_weights_half(folder / model.name)
        paths[model.name.split("_")[-2]] = folder / model.name  # det, cls, rec (ch_PP-OCRv4_det_infer.onnx)
    original = RapidOCR(print_verbose=False)
    halved = RapidOCR(print_verbose=False, det_model_path=str(paths["det"]), cls_model_path=str(paths["cls"]),
                      rec_model_path=str(paths["rec"]))
    pages = [_page(LINES["en"], ImageFont.load_default(56))]
    cjk = next((font for font in CJK_FONTS if Path(font).is_file()), None)
    if cjk is not None:
        pages.append(_page(LINES["zh"], ImageFont.truetype(cjk, 56)))
    for page in pages:
        before, after = _read(original, page), _read(halved, page)
        if before != after or not before:
            raise SystemExit(f"the float16 OCR models read {after!r} where the originals read {before!r}")
    saved = sum((models / name.name).stat().st_size - name.stat().st_size for name in paths.values())
    print(f"OCR models: {saved / 1e6:.1f} MB smaller, the same lines read from {len(pages)} pages")


if __name__ == "__main__":
    compact(Path(sys.argv[1]))
