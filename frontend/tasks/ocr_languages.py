"""OCR language codes: Tesseract's names (eng, deu, chi_sim), ISO 639-1 aliases, what is installed.

One vocabulary for every engine: the codes of Tesseract's traineddata files, which are also
the Debian package suffixes (deu -> tesseract-ocr-deu, chi_sim -> tesseract-ocr-chi-sim).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# Every language Debian 12 packages as tesseract-ocr-<code> (`apt-cache search tesseract-ocr-`,
# less the script/* models and osd, which is orientation detection, not a language).
_DEBIAN_LANGUAGES = """
    afr amh ara asm aze aze_cyrl bel ben bod bos bre bul cat ceb ces chi_sim chi_sim_vert
    chi_tra chi_tra_vert chr cos cym dan deu div dzo ell eng enm epo est eus fao fas fil fin
    fra frk frm fry gla gle glg grc guj hat heb hin hrv hun hye iku ind isl ita ita_old jav
    jpn jpn_vert kan kat kat_old kaz khm kir kmr kor kor_vert lao lat lav lit ltz mal mar
    mkd mlt mon mri msa mya nep nld nor oci ori pan pol por pus que ron rus san sin slk slv
    snd spa spa_old sqi srp srp_latn sun swa swe syr tam tat tel tgk tha tir ton tur uig ukr
    urd uzb uzb_cyrl vie yid yor
"""
TESSERACT_LANGUAGES = frozenset(_DEBIAN_LANGUAGES.split())
# ISO 639-1 (two-letter) codes accepted for the common languages; "ch" is RapidOCR's own name.
ALIASES = {
    "af": "afr", "ar": "ara", "be": "bel", "bg": "bul", "bn": "ben", "ca": "cat", "ch": "chi_sim",
    "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "el": "ell", "en": "eng", "eo": "epo",
    "es": "spa", "et": "est", "eu": "eus", "fa": "fas", "fi": "fin", "fr": "fra", "ga": "gle",
    "gl": "glg", "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun", "hy": "hye", "id": "ind",
    "is": "isl", "it": "ita", "ja": "jpn", "ka": "kat", "kk": "kaz", "ko": "kor", "la": "lat",
    "lt": "lit", "lv": "lav", "mk": "mkd", "ms": "msa", "mt": "mlt", "nb": "nor", "nl": "nld",
    "no": "nor", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk", "sl": "slv",
    "sq": "sqi", "sr": "srp", "sv": "swe", "sw": "swa", "ta": "tam", "th": "tha", "tr": "tur",
    "uk": "ukr", "ur": "urd", "uz": "uzb", "vi": "vie", "zh": "chi_sim",
}  # fmt: skip
# What rapidocr-onnxruntime's bundled PP-OCRv4 recogniser reads: Chinese (simplified) and
# English (Latin letters, digits). The package ships no other recognition model offline.
RAPIDOCR_LANGUAGES = ("chi_sim", "eng")
# Where Debian (5.x, then 4.x) and other distributions put the traineddata files.
TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
)
MAX_LANGUAGES = 8  # in one request ("deu+eng+fra"); each one slows Tesseract down


def normalise(code: str) -> str:
    """A language code in Tesseract's spelling ("DE" -> "deu"); ValueError if not a known one."""
    code = code.strip().lower().replace("-", "_")
    code = ALIASES.get(code, code)
    if code not in TESSERACT_LANGUAGES:
        raise ValueError(f"unknown language '{code[:20]}'")
    return code


def parse_lang(value: str) -> list[str]:
    """ "deu+eng" or "de,en" as known Tesseract codes, in order, without repeats; ValueError
    naming the first unknown code."""
    parts = [part for part in re.split(r"[+,]", value) if part.strip()]
    if not parts:
        raise ValueError("lang is empty")
    codes: list[str] = []
    for part in parts:
        code = normalise(part)
        if code not in codes:
            codes.append(code)
    if len(codes) > MAX_LANGUAGES:
        raise ValueError(f"at most {MAX_LANGUAGES} languages at once")
    return codes


def debian_package(code: str) -> str:
    return "tesseract-ocr-" + code.replace("_", "-")


def tessdata_dir() -> Path | None:
    """TESSDATA_PREFIX if set, else the first of the usual folders that exists."""
    if os.environ.get("TESSDATA_PREFIX"):
        return Path(os.environ["TESSDATA_PREFIX"])
    return next((Path(d) for d in TESSDATA_DIRS if Path(d).is_dir()), None)


def installed_languages(folder: Path | None = None) -> list[str] | None:
    """The languages with a traineddata file, sorted; None when there is no tessdata folder."""
    folder = folder or tessdata_dir()
    if folder is None or not folder.is_dir():
        return None
    return sorted(
        path.stem for path in folder.glob("*.traineddata") if path.stem in TESSERACT_LANGUAGES
    )
