"""Reading order of detected text lines: page skew, blocks and columns, rows (pure numpy).

Lines are turned into the page's own frame (the median angle of the long boxes undone), then
cut recursively: at a column gutter first (an x-gap that no line crosses, with prose-length
lines on both sides, or on one side beside short lines off its rows such as a sidebar; table
columns stay together and tables read row by row), else at wide y-gaps. Each leaf is one
block; its lines are grouped into rows by vertical overlap.
"""

from __future__ import annotations

import numpy as np

MAX_SKEW_DEGREES = 15.0
# A gutter is at least this many line heights wide, with lines on both sides whose median
# width is at least PROSE_WIDTH line heights (table cells and receipt fields are shorter).
GUTTER_HEIGHTS = 1.0
PROSE_WIDTH = 6.0
# A gutter with prose on one side only (a sidebar or a menu beside text) also cuts, unless
# the short lines sit on the prose rows like table cells: at least ROW_ALIGNED of them
# centred within ALIGN_HEIGHTS line heights of a line across the gutter.
ROW_ALIGNED = 0.8
ALIGN_HEIGHTS = 0.25
# Blocks stacked vertically are separated by a gap of at least this many line heights.
BLOCK_GAP_HEIGHTS = 1.0


def page_skew(boxes: np.ndarray) -> float:
    """The page's text angle in radians (y down, positive = clockwise), from [N, 4, 2] boxes."""
    if len(boxes) == 0:
        return 0.0
    first, second = boxes[:, 1] - boxes[:, 0], boxes[:, 2] - boxes[:, 1]
    first_length, second_length = np.hypot(*first.T), np.hypot(*second.T)
    long_first = first_length >= second_length
    edge = np.where(long_first[:, None], first, second)
    length = np.maximum(first_length, second_length)
    thickness = np.minimum(first_length, second_length)
    angle = np.arctan2(edge[:, 1], edge[:, 0])
    angle = (angle + np.pi / 2) % np.pi - np.pi / 2  # direction, not orientation: (-90, 90]
    usable = (length >= 2 * thickness) & (np.abs(angle) <= np.radians(MAX_SKEW_DEGREES))
    if not usable.any():
        return 0.0
    order = np.argsort(angle[usable])
    weights = length[usable][order]
    middle = np.searchsorted(np.cumsum(weights), weights.sum() / 2)
    return float(angle[usable][order][middle])


def deskewed_bounds(boxes: np.ndarray, angle: float) -> np.ndarray:
    """[N, 4] left, top, right, bottom of each box after rotating the page by -angle."""
    if len(boxes) == 0:
        return np.zeros((0, 4))
    cos, sin = np.cos(angle), np.sin(angle)
    x, y = boxes[..., 0], boxes[..., 1]
    turned_x, turned_y = x * cos + y * sin, -x * sin + y * cos
    return np.stack([turned_x.min(1), turned_y.min(1), turned_x.max(1), turned_y.max(1)], axis=1)


def _gaps(starts: np.ndarray, ends: np.ndarray) -> list[tuple[float, float]]:
    """Empty intervals between the union of [start, end] intervals, left to right."""
    order = np.argsort(starts)
    gaps, reach = [], ends[order[0]]
    for index in order[1:]:
        if starts[index] > reach:
            gaps.append((float(reach), float(starts[index])))
        reach = max(reach, ends[index])
    return gaps


def _row_aligned(short: np.ndarray, other: np.ndarray, height: float) -> bool:
    """Whether the `short` side's lines sit on the `other` side's rows (table cells)."""
    centre, across = (short[:, 1] + short[:, 3]) / 2, (other[:, 1] + other[:, 3]) / 2
    distance = np.abs(centre[:, None] - across[None, :]).min(axis=1)
    return bool(np.mean(distance <= ALIGN_HEIGHTS * height) >= ROW_ALIGNED)


def _column_cut(bounds: np.ndarray, height: float) -> float | None:
    """The x of the widest gutter with prose on both sides, or on one side beside lines that
    are not on its rows (a sidebar), if any."""
    best: tuple[float, float] | None = None
    widths = bounds[:, 2] - bounds[:, 0]
    for start, end in _gaps(bounds[:, 0], bounds[:, 2]):
        if end - start < GUTTER_HEIGHTS * height:
            continue
        middle = (start + end) / 2
        on_left, on_right = bounds[:, 2] <= middle, bounds[:, 0] >= middle
        if min(on_left.sum(), on_right.sum()) < 2:
            continue
        prose_left = np.median(widths[on_left]) >= PROSE_WIDTH * height
        prose_right = np.median(widths[on_right]) >= PROSE_WIDTH * height
        if prose_left != prose_right:
            short, other = (on_right, on_left) if prose_left else (on_left, on_right)
            cuts = not _row_aligned(bounds[short], bounds[other], height)
        else:
            cuts = bool(prose_left)
        if cuts and (best is None or end - start > best[0]):
            best = (end - start, middle)
    return None if best is None else best[1]


def _blocks(indices: np.ndarray, bounds: np.ndarray, height: float) -> list[np.ndarray]:
    """Blocks of line indices in reading order (recursive XY-cut, columns before bands)."""
    if len(indices) < 2:
        return [indices]
    mine = bounds[indices]
    cut = _column_cut(mine, height)
    if cut is not None:
        sides = [indices[mine[:, 2] <= cut], indices[mine[:, 0] >= cut]]
    else:
        cuts = [
            (start + end) / 2
            for start, end in _gaps(mine[:, 1], mine[:, 3])
            if end - start >= BLOCK_GAP_HEIGHTS * height
        ]
        if not cuts:
            return [indices]
        band = np.searchsorted(cuts, (mine[:, 1] + mine[:, 3]) / 2)
        sides = [indices[band == b] for b in range(len(cuts) + 1)]
    return [block for side in sides if len(side) for block in _blocks(side, bounds, height)]


def _rows(indices: np.ndarray, bounds: np.ndarray) -> list[list[int]]:
    """Rows by vertical overlap (half the smaller height), top to bottom, left to right."""
    rows: list[list[int]] = []
    centre = (bounds[:, 1] + bounds[:, 3]) / 2
    for index in sorted(indices.tolist(), key=lambda i: (centre[i], bounds[i, 0])):
        if rows:
            last = bounds[rows[-1]]
            top, bottom = float(np.median(last[:, 1])), float(np.median(last[:, 3]))
            line_top, line_bottom = bounds[index, 1], bounds[index, 3]
            overlap = min(bottom, line_bottom) - max(top, line_top)
            if overlap > 0.5 * min(bottom - top, line_bottom - line_top):
                rows[-1].append(index)
                continue
        rows.append([index])
    return [sorted(row, key=lambda i: bounds[i, 0]) for row in rows]


def layout(boxes: list[list[list[float]]]) -> list[list[list[int]]]:
    """Blocks of rows of line indices, in reading order, for boxes of 4 [x, y] corners."""
    if not boxes:
        return []
    points = np.asarray(boxes, dtype=np.float64).reshape(len(boxes), 4, 2)
    bounds = deskewed_bounds(points, page_skew(points))
    height = float(np.median(bounds[:, 3] - bounds[:, 1]))
    blocks = _blocks(np.arange(len(boxes)), bounds, max(height, 1.0))
    return [_rows(block, bounds) for block in blocks]
