"""Multi-object tracking metrics: CLEAR MOT (MOTA, ID switches, fragmentations) and
identity metrics (IDF1), computed from per-frame boxes.

Definitions follow Bernardin & Stiefelhagen (2008) for CLEAR MOT and Ristani et al.
(2016) for IDF1, the ones ``motmetrics`` implements (which does not run on NumPy 2).
A ground-truth and a hypothesis box match when their IoU is at least ``iou_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from meshstream.models.detections import box_iou


@dataclass(frozen=True)
class FrameBoxes:
    """Boxes of one frame.

    Attributes:
        ids: (N,) int identities.
        boxes: (N, 4) xyxy pixels.
    """

    ids: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class TrackingScores:
    """Tracking quality over a clip.

    Attributes:
        mota: 1 - (misses + false positives + id switches) / ground-truth boxes.
        idf1: Identity F1 score in [0, 1].
        id_switches: Times a ground-truth identity is matched to a different track.
        fragmentations: Times a ground-truth trajectory goes from tracked to untracked
            and back.
        misses: Ground-truth boxes without a match.
        false_positives: Hypothesis boxes without a match.
        num_gt: Ground-truth boxes.
        num_tracks: Distinct hypothesis ids.
    """

    mota: float
    idf1: float
    id_switches: int
    fragmentations: int
    misses: int
    false_positives: int
    num_gt: int
    num_tracks: int


def evaluate_tracking(gt: list[FrameBoxes], hyp: list[FrameBoxes], iou_threshold: float = 0.5) -> TrackingScores:
    """Scores hypothesis tracks against ground truth, frame by frame (same length lists)."""
    if len(gt) != len(hyp):
        raise ValueError(f"gt has {len(gt)} frames, hyp {len(hyp)}")
    last_match: dict[int, int] = {}  # gt id -> hyp id it was last matched to
    tracked_prev: dict[int, bool] = {}
    misses = fps = switches = frags = num_gt = 0
    pair_counts: dict[tuple[int, int], int] = {}
    gt_counts: dict[int, int] = {}
    hyp_counts: dict[int, int] = {}
    for g, h in zip(gt, hyp):
        g_ids, h_ids = list(map(int, g.ids)), list(map(int, h.ids))
        num_gt += len(g_ids)
        for i in g_ids:
            gt_counts[i] = gt_counts.get(i, 0) + 1
        for j in h_ids:
            hyp_counts[j] = hyp_counts.get(j, 0) + 1
        iou = box_iou(g.boxes, h.boxes) if len(g_ids) and len(h_ids) else np.zeros((len(g_ids), len(h_ids)))
        for a in range(len(g_ids)):
            for b in range(len(h_ids)):
                if iou[a, b] >= iou_threshold:
                    pair_counts[(g_ids[a], h_ids[b])] = pair_counts.get((g_ids[a], h_ids[b]), 0) + 1
        # CLEAR MOT: keep last frame's correspondences when still valid, then Hungarian.
        matches: dict[int, int] = {}
        for a, gi in enumerate(g_ids):
            hj = last_match.get(gi)
            if hj is not None and hj in h_ids:
                b = h_ids.index(hj)
                if iou[a, b] >= iou_threshold and hj not in matches.values():
                    matches[gi] = hj
        free_g = [a for a, gi in enumerate(g_ids) if gi not in matches]
        free_h = [b for b, hj in enumerate(h_ids) if hj not in matches.values()]
        if free_g and free_h:
            sub = iou[np.ix_(free_g, free_h)]
            rows, cols = linear_sum_assignment(-sub)
            for r, c in zip(rows, cols):
                if sub[r, c] >= iou_threshold:
                    gi, hj = g_ids[free_g[r]], h_ids[free_h[c]]
                    if gi in last_match and last_match[gi] != hj:
                        switches += 1
                    matches[gi] = hj
        for gi in g_ids:
            tracked = gi in matches
            if tracked:
                if tracked_prev.get(gi) is False:
                    frags += 1
                last_match[gi] = matches[gi]
            else:
                misses += 1
            if gi in tracked_prev or tracked:
                tracked_prev[gi] = tracked
        fps += len(h_ids) - len(matches)
    # IDF1: one-to-one identity assignment maximising co-occurring matched frames.
    g_list, h_list = sorted(gt_counts), sorted(hyp_counts)
    idtp = 0
    if g_list and h_list:
        overlap = np.array([[pair_counts.get((gi, hj), 0) for hj in h_list] for gi in g_list], float)
        rows, cols = linear_sum_assignment(-overlap)
        idtp = int(overlap[rows, cols].sum())
    denom = sum(gt_counts.values()) + sum(hyp_counts.values())
    return TrackingScores(
        mota=1.0 - (misses + fps + switches) / max(num_gt, 1),
        idf1=2 * idtp / denom if denom else 1.0,
        id_switches=switches,
        fragmentations=frags,
        misses=misses,
        false_positives=fps,
        num_gt=num_gt,
        num_tracks=len(hyp_counts),
    )
