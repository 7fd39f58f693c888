"""Generators for the documents the tests index: PDFs (reportlab), DOCX, text in encodings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import GetResult
    from pytest import MonkeyPatch


def make_pdf(path: Path, pages: Sequence[str], user_password: str | None = None, owner_password: str | None = None) -> Path:
    """A real PDF with one page per string (lines wrapped), optionally encrypted."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    encrypt = None
    if user_password is not None or owner_password is not None:
        encrypt = StandardEncryption(user_password or "", ownerPassword=owner_password or "owner", strength=128)
    c = canvas.Canvas(str(path), pagesize=A4, encrypt=encrypt)
    for text in pages:
        y = 800
        for paragraph in text.split("\n"):
            words = paragraph.split()
            line: list[str] = []
            for word in words:
                if len(" ".join([*line, word])) > 85:
                    c.drawString(40, y, " ".join(line))
                    y -= 14
                    line = []
                line.append(word)
            if line:
                c.drawString(40, y, " ".join(line))
            y -= 20
        c.showPage()
    c.save()
    return path


def make_table_pdf(path: Path, rows: Sequence[Sequence[str]], spans: Sequence[tuple[tuple[int, int], tuple[int, int]]] = (),
                   rule_under_title: bool = False) -> Path:
    """A PDF with prose, a ruled table (``spans``: merged cells, as reportlab's SPAN corners)
    that flows onto the next page when long, and prose after it."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import HRFlowable, Paragraph, SimpleDocTemplate, Table, TableStyle

    styles = getSampleStyleSheet()
    table = Table([list(row) for row in rows])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)] + [("SPAN", a, b) for a, b in spans]))
    story = [Paragraph("Quarterly results", styles["Heading1"])]
    if rule_under_title:
        story.append(HRFlowable(width="100%"))
    story += [Paragraph("The table below lists revenue by region.", styles["Normal"]), table,
              Paragraph("More prose follows the table.", styles["Normal"])]
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def make_image_pdf(path: Path, pages: int = 2) -> Path:
    """A PDF whose pages hold only drawings: no text layer, like a scan."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    for i in range(pages):
        c.rect(50 + i, 50, 300, 400, fill=1)
        c.showPage()
    c.save()
    return path


FONTS = {
    "en": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "zh": "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # tests/setup-system.sh installs it
}


def scan(lines: Sequence[str], language: str = "en", dpi: int = 150):
    """An A4 page image of ``lines`` in 12-point type, as a scanner would give it (slightly turned)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = int(8.27 * dpi), int(11.69 * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONTS[language], round(12 / 72 * dpi))
    y = dpi
    for line in lines:
        draw.text((dpi, y), line, font=font, fill=20)
        y += round(18 / 72 * dpi) if line else round(30 / 72 * dpi)
    return image.rotate(0.7, fillcolor=255)


def make_scanned_pdf(path: Path, pages: Sequence[Sequence[str] | str], dpi: int = 150) -> Path:
    """A PDF of page images without a text layer; a ``str`` entry is a page with a text layer instead."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for page in pages:
        if isinstance(page, str):
            c.drawString(40, 800, page)
        else:
            c.drawImage(ImageReader(scan(page, dpi=dpi)), 0, 0, width=A4[0], height=A4[1])
        c.showPage()
    c.save()
    return path


def make_docx(path: Path, blocks: Sequence[tuple[str, object]]) -> Path:
    """A DOCX from ``("h1"|"h2"|"p", text)`` and ``("table", rows)`` blocks."""
    import docx

    document = docx.Document()
    for kind, content in blocks:
        if kind == "table":
            rows = list(content)  # type: ignore[arg-type]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    table.cell(r, c).text = str(value)
        elif kind.startswith("h"):
            document.add_heading(str(content), level=int(kind[1:]))
        else:
            document.add_paragraph(str(content))
    document.save(str(path))
    return path


PROSE = [
    "The lighthouse keeper logged every passing ship in a leather-bound ledger. Storms in October "
    "were the worst, when waves climbed the granite rocks and salt spray reached the lamp room.",
    "Photosynthesis converts light energy into chemical energy stored in glucose. Chlorophyll "
    "absorbs mostly blue and red light, which is why leaves look green to our eyes.",
    "The treaty was signed in 1648 and ended thirty years of war across central Europe. Its "
    "negotiators met in two cities, Osnabrück and Münster, for nearly five years.",
    "Sourdough bread rises thanks to wild yeast and lactic acid bacteria living in the starter. "
    "Bakers feed the starter with flour and water every day to keep the culture active.",
    "Volcanic eruptions can cool the planet for a year or two when sulphur dioxide reaches the "
    "stratosphere and forms droplets that reflect sunlight back into space.",
]


def rows_read(monkeypatch: MonkeyPatch, collection: Collection) -> list[int]:
    """The row count of each ``get`` made of ``collection`` from now on (until the test ends)."""
    read: list[int] = []
    real_get = collection.get

    def counting_get(*args: Any, **kwargs: Any) -> GetResult:  # Chroma's own arguments, passed on
        rows = real_get(*args, **kwargs)
        read.append(len(rows["ids"]))
        return rows

    monkeypatch.setattr(collection, "get", counting_get)
    return read
