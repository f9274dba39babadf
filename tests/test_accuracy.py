"""The ground-truth benchmark (bench/accuracy.py) in its quick form: one rendered
two-person clip (75 degree field of view, 2.6 and 3.6 m) through the real CLI, scored
with BLADE's metrics. Tolerances sit above the measured values (README: Accuracy), so a
regression in the estimator, the camera search or the metrics fails here."""

import json
import re
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("accuracy") / "quick.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "accuracy.py"), "--quick", "--methods",
                           "meshstream,meshstream without lifter,f = diagonal,true focal,phone metadata focal",
                           "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| meshstream |" in proc.stdout  # the printed table
    return json.loads(out.read_text())["summary"]


def test_estimated_focal_beats_the_diagonal_guess(quick, measured):
    ours, diag = quick["meshstream"], quick["f = diagonal"]
    # measured 21.7 % and 91.8 %
    assert measured("f_median_pct", ours["f"]["median"]) < 33.0 < 60.0 < measured("diag_f_median_pct",
                                                                                   diag["f"]["median"])
    # measured 0.595 m and 2.73 m (ratio 0.22)
    assert measured("tz_mean_m", ours["tz"]["mean"]) < 0.9
    assert ours["tz"]["mean"] < 0.33 * measured("diag_tz_mean_m", diag["tz"]["mean"])
    assert measured("inv_tz_mean_per_m", ours["inv_tz"]["mean"]) < measured("diag_inv_tz_mean_per_m",
                                                                            diag["inv_tz"]["mean"])


def test_lifter_improves_the_pose_and_leaves_the_focal(quick, measured):
    ours, plain = quick["meshstream"], quick["meshstream without lifter"]
    measured("f_median_diff_pct", abs(ours["f"]["median"] - plain["f"]["median"]))
    assert ours["f"]["median"] == pytest.approx(plain["f"]["median"], abs=1e-3)  # the same search
    assert measured("pa_mpjpe_mean_mm", ours["pa_mpjpe"]["mean"]) < measured("plain_pa_mpjpe_mean_mm",
                                                                            plain["pa_mpjpe"]["mean"])
    assert measured("mpjpe_mean_mm", ours["mpjpe"]["mean"]) < measured("plain_mpjpe_mean_mm", plain["mpjpe"]["mean"])


def test_known_focal_meets_the_depth_and_pose_targets(quick, measured):
    oracle = quick["true focal"]
    measured("f_median_pct", abs(oracle["f"]["median"]))
    assert oracle["f"]["median"] == pytest.approx(0.0, abs=1e-3)
    # Measured: Tz 0.047 m, Txy 0.021 m, PA-MPJPE 39.5 mm, MPJPE 79.7 mm, PVE 101.2 mm,
    # mIoU 0.738, acceleration 9.7 mm/frame^2; bounds about 1.5x (mIoU: 1.5x its 1 - IoU).
    # Acceleration varies with the render: 17.9 on an AVX2-only machine, whose render
    # BlazePose reads from behind for 2 frames on the second person (the fit spreads it
    # over 9), and 7.3, 10.5, 7.2 there with 1-DN noise added before encoding (Tz 0.027 m,
    # MPJPE 64-76 mm): its bound is 1.5x the largest.
    assert measured("tz_mean_m", oracle["tz"]["mean"]) < 0.07 and measured("txy_mean_m", oracle["txy"]["mean"]) < 0.033
    assert (measured("pa_mpjpe_mean_mm", oracle["pa_mpjpe"]["mean"]) < 60.0
            and measured("mpjpe_mean_mm", oracle["mpjpe"]["mean"]) < 110.0)
    assert (measured("pve_mean_mm", oracle["pve"]["mean"]) < 150.0
            and measured("miou_mean", oracle["miou"]["mean"]) > 0.65)
    assert measured("accel_mean_mm_per_f2", oracle["accel"]["mean"]) < 27.0


def test_phone_metadata_gives_the_focal_to_its_rounding(quick, measured):
    """The clip's copy carries the focal as a whole-millimetre 35 mm equivalent (an
    iPhone's): the run reads it from the container and uses it as given."""
    phone, oracle = quick["phone metadata focal"], quick["true focal"]
    # measured 1.95 %: 75 degrees on 640 px is 23.46 mm, written as 23
    assert measured("f_median_pct", phone["f"]["median"]) < 2.5
    assert measured("tz_mean_vs_oracle_m", abs(phone["tz"]["mean"] - oracle["tz"]["mean"])) < 0.09  # measured 0.059


def test_every_person_frame_is_found_and_scored(quick, measured):
    for name, method in quick.items():
        tag = re.sub(r"\W+", "_", name)
        # Measured: 95.8 % found by every method; PA-MPJPE 37.2-47.9 mm (without the lifter the most).
        assert measured(f"found_frac_{tag}", method["found"]) > 0.93
        assert measured(f"pa_mpjpe_mean_mm_{tag}", method["pa_mpjpe"]["mean"]) < 70.0
