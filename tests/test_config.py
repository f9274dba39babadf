"""Typed config loading, presets and overrides."""

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


@pytest.mark.parametrize(
    "override, message",
    [
        ("estimation.nope=1", "unknown config key 'estimation.nope'"),
        ("nosection.x=1", "unknown config key 'nosection'"),
        ("decode.every=abc", "decode.every must be int"),
        ("decode.every=0", "decode.every must be >= 1"),
        ("estimation.fov_deg=200", "fov_deg must be in"),
        ("output.overlay=3", "output.overlay must be bool"),
        ("noequals", "write section.key=value"),
    ],
)
def test_invalid_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_bad_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("decode: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
