"""Optional system tools for what our Python parsers cannot read: Tesseract for scanned PDFs, LibreOffice
for legacy ``.doc``/``.ppt``. Each runs as a bounded subprocess (a timeout, its whole process group killed
on expiry), so a stuck tool costs one item one line, never the run.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from corpus.config import IngestSettings
from corpus.errors import ItemError

LEGACY = {".doc": "docx", ".ppt": "pptx"}  # read through the modern format; .xls is read as it is (xlrd)
_NO_IMAGE_DPI = 300  # a page drawn without images (outlined glyphs): Tesseract's preferred resolution
_MIN_DPI, _MAX_DPI = 72, 400
_MAX_PIXELS = 40_000_000  # an A4 page at 600 dpi is 35 M; a poster page is scaled down to this


def tools_for(ingest: IngestSettings) -> dict[str, str]:
    """Per file suffix, the tool that reads such files here, as a mark for their change stamps: a file that
    failed for want of a tool is read again once the tool is installed (the others cost a hash, once)."""
    found: dict[str, str] = {}
    if ingest.ocr and shutil.which("tesseract") is not None:
        found[".pdf"] = "+ocr"
    if ingest.libreoffice and shutil.which("soffice") is not None:
        found.update(dict.fromkeys(LEGACY, "+soffice"))
    return found


def ocr_pdf(path: Path, ingest: IngestSettings) -> list[tuple[int, str]]:
    """Text of each page of a PDF without a text layer, as (page number from 1, text).

    Raises ItemError with one line when OCR is off, Tesseract is missing, the PDF has more pages than
    ``ocr_max_pages``, or the document takes longer than ``ocr_timeout`` seconds.
    """
    import pypdfium2 as pdfium

    if not ingest.ocr:
        raise ItemError("PDF has no text layer (scanned or image-only; OCR is not enabled)")
    if shutil.which("tesseract") is None:
        raise ItemError("PDF has no text layer (scanned or image-only; OCR needs tesseract, which is not installed)")
    deadline = time.monotonic() + ingest.ocr_timeout
    pdf = pdfium.PdfDocument(str(path))
    try:
        count = len(pdf)
        if count > ingest.ocr_max_pages:
            raise ItemError(f"scanned PDF of {count} pages is over [ingest] ocr_max_pages = {ingest.ocr_max_pages}")
        pages = []
        for number in range(1, count + 1):
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise subprocess.TimeoutExpired("tesseract", ingest.ocr_timeout)
                pages.append((number, _ocr_page(pdf[number - 1], ingest.ocr_languages, remaining, number)))
            except subprocess.TimeoutExpired:
                raise ItemError(f"OCR stopped at page {number} of {count}: over [ingest] ocr_timeout = "
                                f"{ingest.ocr_timeout:g} s") from None
    finally:
        pdf.close()
    if not any(text.strip() for _, text in pages):
        raise ItemError(f"PDF has no text layer and OCR found no text on its {count} page(s)")
    return pages


def _ocr_page(page, languages: str, timeout: float, number: int) -> str:
    image = page.render(scale=_scale(page), grayscale=True).to_pil()
    png = io.BytesIO()
    image.save(png, format="PNG")
    # OpenMP threads spin while they wait: on a busy machine one thread is twice as fast (measured, 2 cores).
    one_thread = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    done = _run(["tesseract", "stdin", "stdout", "-l", languages], timeout, png.getvalue(), one_thread)
    stderr = done.stderr.decode(errors="replace")
    if done.returncode != 0 or "Failed loading language" in stderr:  # one of several missing: Tesseract goes on
        raise ItemError(_tesseract_reason(stderr, languages, number))
    return done.stdout.decode(errors="replace").replace("\x0c", "")


def _scale(page) -> float:
    """The scan's own resolution: rendering finer adds no detail, and (measured on single_table.pdf) makes
    Tesseract lose table cells; rendering coarser loses detail. Pixels are bounded for huge pages."""
    import pypdfium2.raw as pdfium_c

    dpi, area = _NO_IMAGE_DPI, 0.0
    for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)):
        left, bottom, right, top = image.get_bounds()
        if (right - left) * (top - bottom) > area:  # the largest image is the scan; a logo does not count
            area = (right - left) * (top - bottom)
            dpi = max(image.get_px_size()) / max(right - left, top - bottom) * 72  # either way up if rotated
    dpi = min(max(dpi, _MIN_DPI), _MAX_DPI)
    width, height = page.get_size()
    return min(dpi / 72, (_MAX_PIXELS / max(width * height, 1)) ** 0.5)


def _tesseract_reason(stderr: str, languages: str, number: int) -> str:
    missing = re.findall(r"Failed loading language '([^']+)'", stderr)
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang.lower().replace('_', '-')}" for lang in missing)
        return f"tesseract has no language data for {', '.join(missing)} ([ingest] ocr_languages = " \
               f"{languages!r}; Debian: apt-get install {packages})"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return f"OCR failed on page {number}: {lines[-1] if lines else 'tesseract exited with an error'}"


@contextmanager
def modern_copy(path: Path, ingest: IngestSettings) -> Iterator[Path]:
    """A legacy .doc/.ppt converted to .docx/.pptx by LibreOffice in a temporary folder, removed afterwards.

    Each conversion has its own LibreOffice profile there: two runs at once would otherwise share the
    user's profile, and the second soffice would hand its file to the first and exit without converting.
    """
    suffix = path.suffix.lower()
    if not ingest.libreoffice:
        raise ItemError(f"legacy {suffix} is not read: [ingest] libreoffice = false")
    if shutil.which("soffice") is None:
        raise ItemError(f"legacy {suffix} needs LibreOffice (soffice), which is not installed")
    target = LEGACY[suffix]
    with tempfile.TemporaryDirectory(prefix="corpus-soffice-") as folder:
        work = Path(folder)
        source = work / f"in{suffix}"  # a plain name: soffice reads some characters in a path as options
        shutil.copyfile(path, source)
        command = ["soffice", "--headless", "--norestore", f"-env:UserInstallation={(work / 'profile').as_uri()}",
                   "--convert-to", target, "--outdir", str(work / "out"), str(source)]
        try:
            done = _run(command, ingest.libreoffice_timeout)
        except subprocess.TimeoutExpired:
            raise ItemError(f"LibreOffice did not convert {suffix} within [ingest] libreoffice_timeout = "
                            f"{ingest.libreoffice_timeout:g} s") from None
        converted = work / "out" / f"in.{target}"
        if not converted.exists():
            said = [line.strip() for line in (done.stdout + done.stderr).decode(errors="replace").splitlines()
                    if line.strip() and "javaldx" not in line]  # a warning every headless run prints
            raise ItemError(f"LibreOffice cannot convert this {suffix}: "
                            f"{said[0][:160] if said else f'exit code {done.returncode}'}")
        yield converted


def _run(command: list[str], timeout: float, stdin: bytes | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``subprocess.run`` that, on timeout, kills the tool's children too (soffice forks soffice.bin)."""
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True, env=env) as process:
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(command, process.returncode, out, err)
