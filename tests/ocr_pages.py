"""Document pages for OCR tests, rendered with their ground-truth text, and a CER helper."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tests.images import font

WORDS = [
    "invoice",
    "total",
    "amount",
    "due",
    "date",
    "paper",
    "ledger",
    "river",
    "stone",
    "window",
    "garden",
    "orange",
    "market",
    "signal",
    "number",
    "account",
    "payment",
    "office",
    "letter",
    "manual",
    "chapter",
    "section",
    "figure",
    "method",
    "result",
    "sample",
    "value",
    "engine",
    "summer",
    "winter",
    "yellow",
    "purple",
    "castle",
]


def sentences(count: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, words)) for _ in range(count)]


def _page(size: tuple[int, int], placed: list[tuple[int, int, str]], font_size: int) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for x, y, text in placed:
        draw.text((x, y), text, fill="black", font=font(font_size))
    return image


def two_columns(rows: int = 12) -> tuple[np.ndarray, str]:
    """Two columns of short lines with a narrow gutter; truth reads the left column first."""
    left, right = sentences(rows, 3, 1), sentences(rows, 3, 2)
    placed = [(40, 40 + 44 * i, t) for i, t in enumerate(left)]
    placed += [(640, 40 + 44 * i, t) for i, t in enumerate(right)]
    image = _page((1200, 80 + 44 * rows), placed, 28)
    return np.asarray(image), "\n".join(left + right)


def rotated(degrees: float, rows: int = 10) -> tuple[np.ndarray, str]:
    """Long lines rotated by `degrees` (counter-clockwise positive), white fill."""
    lines = sentences(rows, 6, 3)
    image = _page((1100, 60 + 48 * rows), [(40, 30 + 48 * i, t) for i, t in enumerate(lines)], 30)
    turned = image.rotate(
        degrees, expand=True, fillcolor="white", resample=Image.Resampling.BICUBIC
    )
    return np.asarray(turned), "\n".join(lines)


def dense(rows: int = 40) -> tuple[np.ndarray, str]:
    """A 3000x2000 page of 40 long lines."""
    lines = sentences(rows, 12, 4)
    placed = [(60, 40 + 48 * i, t) for i, t in enumerate(lines)]
    return np.asarray(_page((3000, 2000), placed, 34)), "\n".join(lines)


def table(rows: int = 8) -> tuple[np.ndarray, str]:
    """An invoice table: item, quantity, price columns with wide gaps; truth is row by row."""
    rng = np.random.default_rng(5)
    cells = [
        (str(rng.choice(WORDS)), str(int(rng.integers(1, 20))), f"{rng.uniform(1, 99):.2f}")
        for _ in range(rows)
    ]
    placed = []
    for i, (item, qty, price) in enumerate(cells):
        y = 40 + 50 * i
        placed += [(40, y, item), (500, y, qty), (800, y, price)]
    image = _page((1000, 80 + 50 * rows), placed, 30)
    return np.asarray(image), "\n".join(" ".join(row) for row in cells)


def small_print(rows: int = 16) -> tuple[np.ndarray, str]:
    """12 px print on a 1600 px wide page (7 px once scaled to the 960 px detection size)."""
    lines = sentences(rows, 8, 9)
    placed = [(60, 30 + 18 * i, t) for i, t in enumerate(lines)]
    return np.asarray(_page((1600, 60 + 18 * rows), placed, 12)), "\n".join(lines)


def blurred(radius: float = 1.5) -> tuple[np.ndarray, str]:
    """The two-column page under a Gaussian blur (an out-of-focus scan)."""
    image, truth = two_columns()
    soft = Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(soft), truth


def receipt() -> tuple[np.ndarray, str]:
    """A till receipt: centred header, item lines with right-aligned prices, a total."""
    rng = np.random.default_rng(6)
    items = [(str(rng.choice(WORDS)).upper(), f"{rng.uniform(0.5, 30):.2f}") for _ in range(9)]
    total = f"{sum(float(price) for _, price in items):.2f}"
    header = ["CORNER MARKET", "12 River Road", "2026-11-29 14:32"]
    image = Image.new("RGB", (520, 150 + 38 * (len(items) + 5)), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    small, ink = font(24), (30, 30, 30)
    y = 30
    for text in header:
        width = draw.textlength(text, font=small)
        draw.text(((520 - width) / 2, y), text, fill=ink, font=small)
        y += 38
    y += 20
    rows = [*items, ("TOTAL", total)]
    for name, price in rows:
        draw.text((30, y), name, fill=ink, font=small)
        draw.text((490 - draw.textlength(price, font=small), y), price, fill=ink, font=small)
        y += 38
    truth = header + [f"{name} {price}" for name, price in rows]
    return np.asarray(image), "\n".join(truth)


def screenshot() -> tuple[np.ndarray, str]:
    """A desktop window: dark menu bar, a sidebar list, a main pane and a coloured button."""
    image = Image.new("RGB", (1280, 760), (236, 238, 241))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1280, 44), fill=(45, 48, 54))
    menu = ["File", "Edit", "View", "Window", "Help"]
    x = 20
    for item in menu:
        draw.text((x, 12), item, fill=(240, 240, 240), font=font(18))
        x += 40 + int(draw.textlength(item, font=font(18)))
    draw.rectangle((0, 44, 260, 760), fill=(250, 250, 252))
    sidebar = ["Inbox 12", "Drafts", "Sent mail", "Archive", "Spam 3", "Settings"]
    for i, text in enumerate(sidebar):
        draw.text((24, 80 + 44 * i), text, fill=(40, 40, 40), font=font(18))
    body = ["Account settings", *sentences(7, 6, 7)]
    draw.text((300, 80), body[0], fill=(20, 20, 20), font=font(26))
    for i, text in enumerate(body[1:]):
        draw.text((300, 140 + 40 * i), text, fill=(60, 60, 60), font=font(18))
    draw.rounded_rectangle((300, 460, 480, 504), 8, fill=(37, 99, 235))
    draw.text((322, 471), "Save changes", fill="white", font=font(18))
    truth = [" ".join(menu), *sidebar, *body, "Save changes"]
    return np.asarray(image), "\n".join(truth)


def issue_set() -> list[tuple[str, tuple[np.ndarray, str]]]:
    """The OCR test set of issue #16: columns, skew (+-3, +-7 degrees), a dense page, a table,
    a receipt and a screenshot, each with its true text (used by the tests and the bench)."""
    return [
        ("two columns", two_columns()),
        ("skew -3", rotated(-3)),
        ("skew +3", rotated(3)),
        ("skew -7", rotated(-7)),
        ("skew +7", rotated(7)),
        ("dense 3000x2000", dense()),
        ("invoice table", table()),
        ("receipt", receipt()),
        ("screenshot", screenshot()),
    ]


def cer(found: str, truth: str) -> float:
    """Character error rate: Levenshtein distance over the truth's length (whitespace folded)."""
    a, b = " ".join(found.split()), " ".join(truth.split())
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            )
        previous = current
    return previous[-1] / max(1, len(b))
