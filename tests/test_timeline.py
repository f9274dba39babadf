"""Fixed-rate animation files: a track's samples put on the video's frame clock."""

import numpy as np
import pytest
import roma
import torch


def test_regular_clock_interpolates_short_gaps_and_holds_long_ones():
    from meshstream.export.timeline import HELD, INTERPOLATED, SEEN, regular_clock

    times = np.array([0.0, 0.1, 0.2, 0.5, 0.6, 1.5, 1.6])  # gaps of 0.3 s and 0.9 s on a 0.1 s clock
    r = regular_clock(times, 0.1, max_gap_s=0.5)
    assert np.allclose(r.times, np.arange(17) * 0.1)
    assert list(r.filled) == [SEEN] * 3 + [INTERPOLATED] * 2 + [SEEN] * 2 + [HELD] * 8 + [SEEN] * 2
    x = times[:, None] * np.array([[1.0, 2.0, 0.0]])  # moves 1 m/s in x
    assert np.allclose(r.vectors(x)[:7, 0], r.times[:7])  # linear across the short gap
    assert np.allclose(r.vectors(x)[7:15, 0], 0.6)  # held over the long one
    # Rotations turn along the geodesic: 0 -> 90 degrees about z over the short gap.
    angles = np.radians([0, 0, 0, 90, 90, 90, 90])
    rot = roma.rotvec_to_rotmat(torch.as_tensor(angles[:, None] * np.array([[0.0, 0.0, 1.0]]))).numpy()
    got = roma.rotmat_to_rotvec(torch.as_tensor(r.rotations(rot))).numpy()
    assert np.allclose(np.degrees(got[:6, 2]), [0, 0, 0, 30, 60, 90], atol=1e-6)
    assert np.allclose(got[:, :2], 0, atol=1e-9)
    with pytest.raises(ValueError, match="increasing"):
        regular_clock(np.array([0.0, 0.0]), 0.1)
