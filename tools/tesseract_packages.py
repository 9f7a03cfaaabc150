"""Print the Debian packages the configured Tesseract OCR models need, one per line.

tools/install.sh installs the missing ones: tesseract-ocr (the CLI, for tools/tesseract_bench)
plus tesseract-ocr-<lang> for every language in an enabled Tesseract model's `languages`
(English when it lists none) and tesseract-ocr-osd. Nothing when no Tesseract model is enabled.

    python -m tools.tesseract_packages [config.yaml]
"""

from __future__ import annotations

import sys
from pathlib import Path

from frontend.core.config import Settings, Task, load_settings
from frontend.tasks.common import builtin_engine
from frontend.tasks.ocr_languages import debian_package


def packages(settings: Settings) -> list[str]:
    languages: list[str] = []
    for entry in settings.models.entries(Task.OCR):
        if entry.enabled and builtin_engine(entry.hf_model) == "tesseract":
            languages += entry.languages or ["eng"]
    if not languages:
        return []
    wanted = ["tesseract-ocr", *(debian_package(code) for code in [*languages, "osd"])]
    return list(dict.fromkeys(wanted))


def main(argv: list[str]) -> None:
    config = Path(argv[0]) if argv else Path("config.yaml")
    settings = load_settings(config if config.exists() else None)
    print("\n".join(packages(settings)))


if __name__ == "__main__":
    main(sys.argv[1:])
