"""Typed config loading, presets and overrides."""

import dataclasses

import pytest

from conftest import REPO
from meshstream.stream.config import Config, load_config
from meshstream.stream.errors import ConfigError


def test_defaults_match_dataclass_defaults():
    assert load_config() == Config()


def test_preset_and_overrides():
    c = load_config(REPO / "configs" / "fast.yaml", ["estimation.focal_px=512", "decode.every=2", "output.overlay=false"])
    assert c.estimation.iterations_3d == 30 and c.perception.detect_every == 10
    assert c.estimation.focal_px == 512.0 and isinstance(c.estimation.focal_px, float)
    assert c.decode.every == 2 and c.output.overlay is False


@pytest.mark.parametrize("preset, changed", [
    ("wide.yaml", {("perception", "small_people"): True, ("estimation", "lifter_keeps_size"): True}),
    ("close.yaml", {("estimation", "focal_landmarks"): "relief_lifter"}),
])
def test_presets_change_only_what_they_say(preset, changed):
    """Each shipped preset loads and differs from the defaults in exactly its keys."""
    c, base = load_config(REPO / "configs" / preset), Config()
    for section in (f.name for f in dataclasses.fields(Config)):
        got, default = getattr(c, section), getattr(base, section)
        for key in vars(default):
            want = changed.get((section, key), getattr(default, key))
            assert getattr(got, key) == want, (section, key)
    assert all(getattr(getattr(base, s), k) != v for (s, k), v in changed.items())


@pytest.mark.parametrize(
    "override, message",
    [
        ("estimation.nope=1", "unknown config key 'estimation.nope'"),
        ("nosection.x=1", "unknown config key 'nosection'"),
        ("decode.every=abc", "decode.every must be int"),
        ("decode.every=0", "decode.every must be >= 1"),
        ("estimation.fov_deg=200", "fov_deg must be a horizontal field of view in degrees, in"),
        ("output.overlay=3", "output.overlay must be bool"),
        ("noequals", "write section.key=value"),
        ("estimation.focal_landmarks=lifted", "focal_landmarks must be one of detector, relief_lifter, pose_lifter"),
        ("estimation.relief_lifter=true", "'estimation.relief_lifter' was replaced; write estimation.focal_landmarks"),
        ("estimation.lifter_focal=true", "'estimation.lifter_focal' was replaced; write estimation.focal_landmarks"),
        ("estimation.person_height_m=175", "person_height_m must be a standing height in metres, 0.5 to 2.5, got 175"),
        ("decode.end_s=0", "decode.end_s must be after the start"),
        ("decode.start_s=-1", "decode.start_s must be >= 0"),
    ],
)
def test_invalid_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


@pytest.mark.parametrize(
    "override, flag, message",
    [
        ("estimation.focal_px=-3", "--focal-px", "--focal-px -3.0: must be a focal length in pixels, > 0"),
        ("decode.every=0", "--every", "--every 0: must be >= 1"),
        ("estimation.person_height_m=3", "--height-m", "--height-m 3.0: must be a standing height"),
        ("decode.end_s=0", "--end", "--end 0.0: must be after the start"),
    ],
)
def test_invalid_flags_are_named_as_typed(override, flag, message):
    """A value the user gave as a flag is reported under that flag, not the config key."""
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=message) as err:
        load_config(None, [override], {key: flag})
    assert key not in str(err.value)


def test_stages_defaults_are_the_configs():
    """The stages' keyword defaults equal the config's, so a stage built without the config
    (a notebook, a test) runs what the CLI runs."""
    import inspect

    from meshstream.models.estimator import BodyEstimator
    from meshstream.models.perception import PersonPerceiver
    from meshstream.stream.config import EstimationConfig, FilterConfig, PerceptionConfig, TrackingConfig
    from meshstream.tracking.filters import PoseSmoother, TranslationSmoother
    from meshstream.tracking.shots import ShotDetector
    from meshstream.tracking.tracker import PersonTracker

    pairs = [  # (config section, stage, {config key: stage argument} where the names differ)
        (PerceptionConfig(), PersonPerceiver, {}),
        (TrackingConfig(), PersonTracker, {}),
        (TrackingConfig(), ShotDetector, {"cut_hist_threshold": "hist_threshold",
                                          "cut_diff_threshold": "diff_threshold"}),
        (EstimationConfig(), BodyEstimator, {"lifter": None}),  # a bool in the config, a loaded network there
        (FilterConfig(), TranslationSmoother, {}),
        (FilterConfig(), PoseSmoother, {"pose_sigma_s": "sigma_s"}),
    ]
    compared = 0
    for section, stage, names in pairs:
        params = inspect.signature(stage).parameters
        for f in dataclasses.fields(section):
            name = names.get(f.name, f.name)
            if name not in params:
                continue
            default = params[name].default
            default = list(default) if isinstance(default, tuple) else default
            assert default == getattr(section, f.name), f"{stage.__name__}({name}=) vs config {f.name}"
            compared += 1
    assert compared >= 20  # 24 today: the comparison really ran


def test_bad_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("decode: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("lifter", [True, False])
@pytest.mark.parametrize("source", ["detector", "relief_lifter", "pose_lifter"])
def test_focal_landmarks_choose_the_estimator_lifters(lifter, source):
    """The pose's lifter follows ``estimation.lifter``; the search's follows
    ``focal_landmarks``: none, the relief weights, or the pose lifter itself (the same
    object, so one structure fit serves both), loaded for the search alone if needed."""
    from meshstream.models.lifter import LandmarkLifter
    from meshstream.stream.pipeline import load_lifters

    c = load_config(None, [f"estimation.lifter={str(lifter).lower()}", f"estimation.focal_landmarks={source}"])
    pose, focal = load_lifters(c.estimation)
    assert (pose is not None) is lifter
    if source == "detector":
        assert focal is None
    elif source == "relief_lifter":
        assert focal.inputs == "landmarks" and focal is not pose
    else:
        assert focal.inputs == LandmarkLifter.load().inputs == "landmarks+keypoints"
        assert (focal is pose) is lifter


def test_a_known_height_excludes_the_shared_floor():
    """Both set the bodies' size: asking for both is one clear error, either alone is fine."""
    assert load_config(None, ["estimation.person_height_m=1.8"]).estimation.person_height_m == 1.8
    with pytest.raises(ConfigError, match="both set the bodies' size; use one"):
        load_config(None, ["estimation.person_height_m=1.8", "estimation.shared_ground=true"])


@pytest.mark.parametrize("argv, message", [
    (["clip.mp4", "--focal-px", "500", "--fov-deg", "60"], "argument --fov-deg: not allowed with argument --focal-px"),
    ([], "the following arguments are required: input"),
    (["export", "out/clip.zarr"], "the following arguments are required: --to"),
    (["calibrate", "board.mp4", "--every", "x"], "argument --every: invalid int value"),
])
def test_command_line_mistakes_get_one_line_and_exit_2(argv, message, capsys):
    """argparse's own errors are one line too (no usage block), naming the --help to read."""
    import process_video

    with pytest.raises(SystemExit) as done:
        process_video.main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and len(err.strip().splitlines()) == 1
    assert message in err and "--help)" in err
