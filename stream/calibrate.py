"""Camera calibration from a video or image folder of a printed chessboard
(``meshstream calibrate``), written as the intrinsics file ``--intrinsics`` reads.

The focal length estimated from people is off by a median 22 % on the benchmark (see
README, Accuracy); a chessboard waved in front of the camera for half a minute fixes
it to a fraction of a percent. Detection and the fit are OpenCV's
(``findChessboardCorners``, ``cornerSubPix``, ``calibrateCameraExtended``); this module picks the
views, checks that they fix the focal, and writes the file.

Conventions: OpenCV pinhole camera and distortion model (``k1, k2, p1, p2, k3``),
pixels with pixel centres at integer coordinates. The board's square size does not
change the intrinsics, so it is not asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meshstream.models.camera import Intrinsics

from .errors import InputError, OutputError
from .messages import Frame

MIN_VIEWS = 4
"""Views the fit needs at least: each gives 8 constraints, the camera 9 unknowns
(fx, fy, cx, cy, k1, k2, p1, p2, k3) plus 6 per view."""

K3_MIN_VIEWS = 10
"""With fewer views ``k3`` stays 0: it overfits a handful of views."""


@dataclass(frozen=True)
class BoardView:
    """One frame in which the whole board was found.

    Attributes:
        frame_index: Index of the frame in the source.
        corners: (N, 2) float32 inner-corner positions, pixels, in OpenCV's order
            (row by row), N = cols * rows.
    """

    frame_index: int
    corners: np.ndarray


@dataclass(frozen=True)
class Calibration:
    """The fitted camera and what it rests on.

    Attributes:
        intrinsics: The camera (``image_size`` set to the frames' size).
        std_px: (4,) standard deviations of fx, fy, cx, cy, pixels (OpenCV's estimate
            from the fit's Jacobian).
        rms_px: Root-mean-square reprojection error over all corners, pixels.
        per_view_rms_px: (V,) the same per view.
        frame_index: (V,) source frame of each view used.
        tilt_deg: (V,) angle between each view's board normal and the optical axis,
            degrees (0: the board faces the camera).
        coverage: Fraction of the frame's width and height spanned by the corners of
            all views, (2,).
        board: (cols, rows) inner corners.
        frames_scanned: Frames searched for the board.
    """

    intrinsics: Intrinsics
    std_px: np.ndarray
    rms_px: float
    per_view_rms_px: np.ndarray
    frame_index: np.ndarray
    tilt_deg: np.ndarray
    coverage: np.ndarray
    board: tuple[int, int]
    frames_scanned: int

    def warnings(self) -> list[str]:
        """Reasons to distrust the result, one line each (empty when it looks sound)."""
        out = []
        if self.rms_px > 1.0:
            out.append(f"the reprojection error is {self.rms_px:.2f} px (good calibrations stay under 0.5 px): check "
                       "--board, and that the board is flat and sharp in the frames")
        if float(self.tilt_deg.max()) < 20.0:
            out.append(f"the board never tilted more than {self.tilt_deg.max():.0f} deg from facing the camera, so the "
                       "focal is poorly fixed: record it again tilted 30-45 deg toward and away")
        if float(self.coverage.min()) < 0.5:
            out.append(f"the board covered only {100 * self.coverage[0]:.0f} % of the frame's width and "
                       f"{100 * self.coverage[1]:.0f} % of its height, so the lens distortion is poorly fixed near "
                       "the edges: move it into the corners too")
        return out


def parse_board(text: str) -> tuple[int, int]:
    """``"9x6"`` -> (9, 6): inner corners per row and per column.

    Raises:
        InputError: Not two integers of at least 3 that differ.
    """
    parts = text.lower().replace("*", "x").split("x")
    try:
        cols, rows = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"--board {text!r}: give the inner corners as COLSxROWS, e.g. 9x6 for a board of "
                         "10 by 7 squares") from None
    if cols < 3 or rows < 3:
        raise InputError(f"--board {text}: a board needs at least 3 inner corners each way")
    if cols == rows:
        raise InputError(f"--board {text}: use a board whose corner counts differ (e.g. 9x6), so its orientation "
                         "is unambiguous")
    return cols, rows


def find_board(rgb: np.ndarray, board: tuple[int, int]) -> np.ndarray | None:
    """The board's inner corners in one frame, or ``None`` when it is not wholly seen.

    Args:
        rgb: (H, W, 3) uint8 frame.
        board: (cols, rows) inner corners.

    Returns:
        (cols * rows, 2) float32 pixels with sub-pixel accuracy, row by row.
    """
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # OpenCV's classic detector on a copy at most 640 px wide finds the board (or rejects a
    # frame without it in a few milliseconds); the corners are then refined at full size.
    scale = min(1.0, 640.0 / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    found, coarse = cv2.findChessboardCorners(small, board, flags=flags)
    if not found:
        return None
    corners = ((coarse.reshape(-1, 2) + 0.5) / scale - 0.5).astype(np.float32)
    # Half-window a quarter of a square: wider windows reach the next corner or the
    # board's edge (OpenCV's sample photos: RMS 0.18 px at a quarter, 0.74 px at 0.35);
    # the sector-based detector (findChessboardCornersSB) was 0.3 % long on the focal of
    # rendered boards, this refinement 0.07 % short.
    win = max(3, int(round(0.25 * _corner_spacing(corners, board))))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 0.001)
    corners = cv2.cornerSubPix(gray, corners.reshape(-1, 1, 2), (win, win), (-1, -1), criteria)
    return corners.reshape(-1, 2).astype(np.float32)


def _corner_spacing(corners: np.ndarray, board: tuple[int, int]) -> float:
    """Median distance between neighbouring corners along a row, pixels."""
    grid = corners.reshape(board[1], board[0], 2)
    return float(np.median(np.linalg.norm(np.diff(grid, axis=1), axis=-1)))


def board_views(frames: Iterable[Frame], board: tuple[int, int], *, min_motion: float = 0.02,
                ) -> tuple[list[BoardView], int]:
    """Frames in which the board is found, skipping those where it has hardly moved.

    Args:
        frames: The frames to search.
        board: (cols, rows) inner corners.
        min_motion: A view is kept when its corners moved on average by more than
            this fraction of the frame's diagonal since the last kept view (a board
            held still adds frames, not information).

    Returns:
        (views, frames searched).
    """
    views: list[BoardView] = []
    scanned = 0
    for frame in frames:
        scanned += 1
        corners = find_board(frame.rgb, board)
        if corners is None:
            continue
        diagonal = math.hypot(frame.width, frame.height)
        if views and np.linalg.norm(corners - views[-1].corners, axis=1).mean() < min_motion * diagonal:
            continue
        views.append(BoardView(frame.index, corners))
    return views, scanned


def calibrate(views: list[BoardView], image_size: tuple[int, int], board: tuple[int, int],
              frames_scanned: int = 0, max_views: int = 40) -> Calibration:
    """Fits the camera to the views (OpenCV's ``calibrateCameraExtended``).

    Args:
        views: Output of :func:`board_views`.
        image_size: (width, height) of the frames, pixels.
        board: (cols, rows) inner corners.
        frames_scanned: Recorded in the result.
        max_views: At most this many views enter the fit, evenly spread over those
            given (the fit's cost grows with the cube of the count).

    Raises:
        InputError: Fewer than :data:`MIN_VIEWS` views.
    """
    import cv2

    if len(views) < MIN_VIEWS:
        raise InputError(f"found the {board[0]}x{board[1]} board in {len(views)} distinct view(s) of {frames_scanned} "
                         f"frames, the fit needs at least {MIN_VIEWS}: check --board (inner corners, not squares) "
                         "and move the whole board, tilted, through the frame")
    if len(views) > max_views:
        views = [views[i] for i in np.linspace(0, len(views) - 1, max_views).round().astype(int)]
    cols, rows = board
    grid = np.zeros((cols * rows, 3), np.float32)
    grid[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2)  # in squares: the size does not matter
    objects = [grid] * len(views)
    images = [v.corners.reshape(-1, 1, 2) for v in views]
    flags = 0 if len(views) >= K3_MIN_VIEWS else cv2.CALIB_FIX_K3
    rms, k, dist, rvecs, _, std_intr, _, per_view = cv2.calibrateCameraExtended(
        objects, images, tuple(int(s) for s in image_size), None, None, flags=flags)
    tilt = np.array([math.degrees(math.acos(min(1.0, abs(cv2.Rodrigues(r)[0][2, 2])))) for r in rvecs])
    pts = np.concatenate([v.corners for v in views])
    coverage = (pts.max(0) - pts.min(0)) / np.asarray(image_size, np.float64)
    width, height = (int(s) for s in image_size)
    intr = Intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]),
                      tuple(float(x) for x in dist.ravel()[:5]), (width, height))
    return Calibration(intr, np.asarray(std_intr, np.float64).ravel()[:4], float(rms),
                       np.asarray(per_view, np.float64).ravel(), np.array([v.frame_index for v in views]),
                       tilt, coverage, board, frames_scanned)


def write_intrinsics(cal: Calibration, path: str | Path, source: str = "") -> Path:
    """Writes the YAML intrinsics file ``--intrinsics`` reads (fx, fy, cx, cy,
    distortion, width, height), with the fit's quality as extra keys.

    Raises:
        OutputError: The file cannot be written.
    """
    import yaml

    intr = cal.intrinsics
    doc = {
        "fx": round(intr.fx, 4), "fy": round(intr.fy, 4), "cx": round(intr.cx, 4), "cy": round(intr.cy, 4),
        "distortion": [round(x, 8) for x in intr.distortion],
        "width": intr.image_size[0], "height": intr.image_size[1],
        "std_px": {k: round(float(v), 4) for k, v in zip(("fx", "fy", "cx", "cy"), cal.std_px)},
        "rms_px": round(cal.rms_px, 4),
        "views": len(cal.frame_index),
        "frames": [int(i) for i in cal.frame_index],
        "max_tilt_deg": round(float(cal.tilt_deg.max()), 1),
        "board": f"{cal.board[0]}x{cal.board[1]}",
        "source": str(source),
    }
    path = Path(path).expanduser()
    header = ("# Camera intrinsics from a chessboard (meshstream calibrate). OpenCV pinhole model, pixels;\n"
              "# distortion: k1, k2, p1, p2, k3. Use: meshstream VIDEO --intrinsics THIS_FILE\n")
    try:
        path.write_text(header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}; choose another -o") from None
    return path
