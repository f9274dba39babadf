"""Shot-cut detection: one camera (one focal) per shot."""

from __future__ import annotations

import numpy as np

from meshstream.stream.messages import Frame


def frame_signature(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A frame's HSV histogram (32 x 8 hue-saturation bins, normalised) and a 32 x 32
    grey thumbnail, the two things a cut changes at once."""
    import cv2

    small = cv2.resize(rgb, (64, 48), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [32, 8], [0, 180, 0, 256]).reshape(-1)
    hist /= max(float(hist.sum()), 1.0)
    grey = cv2.resize(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
    return hist.astype(np.float32), grey.astype(np.float32) / 255.0


class ShotDetector:
    """Stage: ``Frame -> bool`` (True when the frame starts a new shot).

    Two cues: the colour distribution (Hellinger distance of HSV histograms) and the
    image layout (mean absolute difference of grey thumbnails). A cut is a frame where
    either cue passes its threshold *and* the change is abrupt: ``ratio`` times the
    shot's typical frame-to-frame change, so that pans, fast motion and lighting drifts
    do not trigger it. (A cut to another angle of the same place keeps the colours but
    not the layout; a cut between similar layouts changes the colours.)

    Args:
        hist_threshold: Minimum histogram distance (in [0, 1]) of a cut.
        diff_threshold: Minimum thumbnail difference (grey levels in [0, 1]) of a cut.
        ratio: A cut's distance must also exceed this multiple of the shot's median.
        min_shot_frames: No cut within this many frames of the previous one.
    """

    def __init__(self, *, hist_threshold: float = 0.35, diff_threshold: float = 0.08, ratio: float = 3.0,
                 min_shot_frames: int = 5) -> None:
        self.hist_threshold = hist_threshold
        self.diff_threshold = diff_threshold
        self.ratio = ratio
        self.min_shot_frames = min_shot_frames
        self.reset()

    def reset(self) -> None:
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._history: list[float] = []
        self._since_cut = 0

    def __call__(self, frame: Frame) -> bool:
        sig = frame_signature(frame.rgb)
        prev, self._prev = self._prev, sig
        self._since_cut += 1
        if prev is None:
            return True
        hist_d = float(np.sqrt(max(0.0, 1.0 - np.sqrt(prev[0] * sig[0]).sum())))
        diff = float(np.abs(prev[1] - sig[1]).mean())
        score = max(hist_d / self.hist_threshold, diff / self.diff_threshold)
        typical = float(np.median(self._history[-50:])) if self._history else 0.0
        cut = self._since_cut >= self.min_shot_frames and score >= 1.0 and score >= self.ratio * typical
        if cut:
            self._history.clear()
            self._since_cut = 0
        else:
            self._history.append(score)
        return cut
