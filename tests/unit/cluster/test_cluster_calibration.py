"""The calibration file: round trip, exact lookup, and one-line refusals of foreign files."""

from __future__ import annotations

import json

import pytest

from cluster import calibration
from cluster.errors import ClusterError
from trainers.spec import Method


def test_round_trip_and_lookup(tmp_path):
    path = tmp_path / "cal.json"
    rates = [calibration.Rate(Method.ROBUST, 0.1, 1, 0.25, "T=1e-4"),
             calibration.Rate(Method.REGULAR, 0.0, 51, 0.002)]
    written = calibration.save(path, "NVIDIA H100 80GB HBM3", rates, created="2026-11-25T00:00:00",
                               versions={"torch": "2.13.0"})
    loaded = calibration.load(path)
    assert loaded == written
    assert loaded.seconds_per_step(Method.ROBUST, 0.1, 1) == 0.25
    assert loaded.seconds_per_step(Method.ROBUST, 0.1, 8) is None
    assert loaded.seconds_per_step(Method.REGULAR, 0.0, 51) == 0.002


@pytest.mark.parametrize("content", [
    "not json", json.dumps([1, 2]), json.dumps({"format": "other"}),
    json.dumps({"format": calibration.FORMAT, "device_model": "", "rates": []}),
    json.dumps({"format": calibration.FORMAT, "device_model": "x", "rates": [{"method": "nope"}]}),
    json.dumps({"format": calibration.FORMAT, "device_model": "x",
                "rates": [{"method": "robust", "radius": 0.1, "pack": 0, "seconds_per_step": 1}]}),
    json.dumps({"format": calibration.FORMAT, "device_model": "x",
                "rates": [{"method": "robust", "radius": 0.1, "pack": 1, "seconds_per_step": -1}]}),
])
def test_bad_files_are_one_line(tmp_path, content):
    path = tmp_path / "cal.json"
    path.write_text(content)
    with pytest.raises(ClusterError) as info:
        calibration.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(ClusterError, match="not found"):
        calibration.load(tmp_path / "none.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ClusterError, match="cannot read"):
        calibration.load(tmp_path / "bin.json")
