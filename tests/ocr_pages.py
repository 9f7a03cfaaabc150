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


def _noisy(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    """Gaussian pixel noise of `sigma` grey levels (a phone camera's sensor noise)."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, np.float32) + rng.normal(0.0, sigma, (*image.size[::-1], 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def ui_text() -> tuple[np.ndarray, str]:
    """A settings dialog in 11-13 px UI print: a title bar, labels with values, buttons."""
    image = Image.new("RGB", (720, 420), (246, 246, 248))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 720, 30), fill=(222, 224, 228))
    draw.text((14, 8), "Network preferences", fill=(30, 30, 30), font=font(13))
    rows = sentences(10, 4, 11)
    truth = ["Network preferences"]
    for i, text in enumerate(rows):
        size = (11, 12, 13)[i % 3]
        label, value = text.rsplit(" ", 1)
        y = 52 + 30 * i
        draw.text((24, y), label, fill=(50, 50, 50), font=font(size))
        draw.text((420, y), value, fill=(20, 20, 20), font=font(size))
        truth.append(f"{label} {value}")
    for x, text in ((420, "Cancel"), (540, "Apply")):
        draw.rounded_rectangle((x, 370, x + 90, 396), 5, fill=(210, 214, 220))
        draw.text((x + 22, 377), text, fill=(20, 20, 20), font=font(12))
    truth.append("Cancel Apply")
    return np.asarray(image), "\n".join(truth)


def low_contrast() -> tuple[np.ndarray, str]:
    """Light grey print on a slightly darker grey (a faded copy)."""
    lines = sentences(8, 5, 12)
    image = Image.new("RGB", (900, 60 + 44 * len(lines)), (200, 200, 200))
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        draw.text((40, 30 + 44 * i), text, fill=(150, 150, 150), font=font(26))
    return np.asarray(image), "\n".join(lines)


def blurred_noisy(sigma: float) -> tuple[np.ndarray, str]:
    """A paragraph of 20 px print under a Gaussian blur of `sigma` px, plus sensor noise."""
    lines = sentences(8, 6, 13)
    page = _page(
        (820, 50 + 34 * len(lines)), [(30, 25 + 34 * i, t) for i, t in enumerate(lines)], 20
    )
    soft = page.filter(ImageFilter.GaussianBlur(sigma))
    return np.asarray(_noisy(soft, 10.0, seed=int(sigma * 10))), "\n".join(lines)


def white_on_dark() -> tuple[np.ndarray, str]:
    """White and light grey print on a dark panel (a dark-mode screen)."""
    lines = sentences(7, 5, 14)
    image = Image.new("RGB", (860, 50 + 42 * len(lines)), (32, 34, 40))
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        ink = (255, 255, 255) if i % 2 == 0 else (200, 204, 210)
        draw.text((30, 25 + 42 * i), text, fill=ink, font=font(22))
    return np.asarray(image), "\n".join(lines)


def banner() -> tuple[np.ndarray, str]:
    """A web banner: a headline and a tagline on a left-to-right colour gradient."""
    width, height = 1200, 260
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    start, end = np.array([20, 60, 140], np.float32), np.array([120, 20, 110], np.float32)
    pixels = np.broadcast_to(start + (end - start) * ramp, (height, width, 3))
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    headline, tagline = "Winter market opens Monday", "fresh bread, orange tea and stone ovens"
    draw.text((60, 60), headline, fill="white", font=font(56))
    draw.text((60, 160), tagline, fill=(255, 230, 160), font=font(28))
    return np.asarray(image), f"{headline}\n{tagline}"


def small_paragraph() -> tuple[np.ndarray, str]:
    """A paragraph of 11 px print, 14 px apart (a footnote or terms text)."""
    lines = sentences(12, 9, 15)
    placed = [(20, 16 + 15 * i, t) for i, t in enumerate(lines)]
    return np.asarray(_page((560, 36 + 15 * len(lines)), placed, 11)), "\n".join(lines)


def peer_set() -> list[tuple[str, tuple[np.ndarray, str]]]:
    """Issue #26's 13 kinds (the peers' comparison): a receipt, small UI text, two columns,
    rotations of 7 and -5 degrees, low contrast, blur 1.2 and 1.5 with noise, white on dark,
    a dense page, an invoice table, a banner on a gradient and an 11 px paragraph."""
    return [
        ("receipt", receipt()),
        ("small UI text", ui_text()),
        ("two columns", two_columns()),
        ("rotated 7", rotated(7)),
        ("rotated -5", rotated(-5)),
        ("low contrast", low_contrast()),
        ("blur 1.2 + noise", blurred_noisy(1.2)),
        ("blur 1.5 + noise", blurred_noisy(1.5)),
        ("white on dark", white_on_dark()),
        ("dense 3000x2000", dense()),
        ("invoice table", table()),
        ("banner", banner()),
        ("11 px paragraph", small_paragraph()),
    ]
