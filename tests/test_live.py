"""``meshstream live``: a file served as a live stream on loopback, the preview page in
headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which ``.ci/run``
installs), and the one-line errors. Traffic goes to 127.0.0.1 only, bounded in time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

DATA = Path(__file__).parent / "data"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def looped_clip(path: Path, loops: int) -> Path:
    """The sample played forwards and backwards ``loops`` times (3 s each way), H.264."""
    import av

    with av.open(str(DATA / "sample.mp4")) as inp:
        frames = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 640, 480, "yuv420p"
        st.options = {"preset": "ultrafast"}
        for k in range(loops):
            for rgb in frames if k % 2 == 0 else frames[::-1]:
                for p in st.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


def serve_stream(path: Path, port: int) -> threading.Thread:
    """Serves ``path`` as a live MPEG-TS stream on tcp://127.0.0.1:port at 30 frames/s
    (PyAV; FFmpeg's tcp listener: one client, then the stream ends)."""
    import av

    def run() -> None:
        try:
            send()
        except av.error.BrokenPipeError:  # the run stopped reading (its --duration passed)
            pass

    def send() -> None:
        with av.open(f"tcp://127.0.0.1:{port}?listen=1&listen_timeout=60000", "w", format="mpegts") as out, \
                av.open(str(path)) as inp:
            st = out.add_stream("mpeg2video", rate=30)
            st.width, st.height, st.pix_fmt = 640, 480, "yuv420p"
            t0 = time.monotonic()
            for i, f in enumerate(inp.decode(video=0)):
                if (wait := t0 + i / 30 - time.monotonic()) > 0:
                    time.sleep(wait)
                for p in st.encode(av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")):
                    out.mux(p)
            for p in st.encode():
                out.mux(p)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def live_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "process_video.py", "live", *args], cwd=Path(__file__).parents[1],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.mark.slow
def test_a_stream_on_loopback_is_fitted_live_and_recorded(tmp_path):
    """A file served as a live stream (MPEG-TS over TCP at 30 frames/s) through
    ``meshstream live --no-browser --duration``: the store completes with the frames it
    processed, each with its bodies, and records the drops and latencies."""
    clip = looped_clip(tmp_path / "loop.mp4", 6)  # 18 s, read on while the models load
    port = free_port()
    server = serve_stream(clip, port)
    res = live_cli("--source", f"tcp://127.0.0.1:{port}", "--no-browser", "--duration", "6", "--port", "0",
                   "-o", str(tmp_path / "out"), "--fov-deg", "60")
    server.join(timeout=30)
    assert res.returncode == 0, res.stderr
    store = zarr.open_group(str(tmp_path / "out" / f"127.0.0.1_{port}.zarr"), mode="r")
    live = store.attrs["live"]
    assert store.attrs["complete"] is True
    n = store.attrs["n_frames"]
    # every processed frame is fitted and stored; how many is a speed (48-80 in 6 s on one
    # 2-core machine, 26 on a 2x slower one), which bench/live.py measures
    assert n == live["processed"] == live["recorded"] and n >= 10, (n, live)
    assert live["captured"] == live["processed"] + live["dropped_capture"] + live["dropped_fit"]
    assert live["latency_ready_ms"]["p50"] is not None and live["latency_ready_ms"]["p50"] > 0
    assert live["stopped_by"] in ("duration", "source ended")
    tracks = store["tracks"]
    bodies = np.bincount(np.concatenate([tracks[t]["frame_index"][:] for t in tracks.group_keys()]), minlength=n)
    # one or two people in every frame of the sample; a frame stored without a body is one
    # where the detector missed or a dropped-frames gap broke a track (0-3 of 35-57 frames
    # in 18 runs on this machine: >= 0.93; 0.8 holds a 26-frame run on a 2x slower one)
    assert (bodies >= 1).mean() >= 0.8, bodies
    tz = np.concatenate([tracks[t]["pelvis"][:][:, 2] for t in tracks.group_keys()])
    assert np.all((tz > 1.0) & (tz < 12.0)), tz  # the sample's people stand 3-6 m away
    assert store.attrs["shot_focal_cue"] == ["given"]
    assert "processed at" in res.stdout and "capture to preview encoded" in res.stdout


@pytest.mark.slow
def test_the_preview_page_shows_frames_and_stop_finishes_the_store(tmp_path):
    """The page in headless Chromium: it loads, the stream's frames change, the numbers
    update, the 3D view is drawn; Stop ends the run and completes the store, which
    records the page's capture-to-display latencies."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    # 60 s: the run is stopped from the page long before (18 s ran out on a 2x slower
    # machine before the focal was shown, and the numbers then stood still)
    clip = looped_clip(tmp_path / "loop.mp4", 20)
    proc = subprocess.Popen([sys.executable, "process_video.py", "live", "--source", str(clip), "--realtime",
                             "--no-browser", "--port", "0", "-o", str(tmp_path / "out"), "--duration", "120",
                             "--overlay", "--set", "live.focal_seconds=6",  # the page sees the focal estimated
                             "--set", "estimation.focal_min_person_frames=200"],
                            cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, f"meshstream live ended early: {proc.stderr.read()}"
            if "-> http://127.0.0.1:" in line:
                url = line.split("-> ", 1)[1].split()[0]
        assert url, "the page's address was not printed"
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(url)
            body = driver.find_element(By.TAG_NAME, "body")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (int(body.get_attribute("data-frames-changed")) < 5
                                                   or int(body.get_attribute("data-stats-updates")) < 5):
                time.sleep(0.2)
            assert int(body.get_attribute("data-frames-changed")) >= 5, "the stream's frames do not change"
            assert "frames/s" in driver.find_element(By.ID, "fps").text
            focal = driver.find_element(By.ID, "focal")
            assert focal.text.startswith("estimating"), focal.text  # the first 6 s' people set it
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and " px (people)" not in focal.text:
                time.sleep(0.2)
            assert " px (people)" in focal.text, focal.text
            first = int(body.get_attribute("data-processed"))
            time.sleep(1.0)
            assert int(body.get_attribute("data-processed")) > first, "the numbers do not update"
            lit = driver.execute_script(
                "const c = document.getElementById('view3d'); const d = c.getContext('2d')"
                ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
                "for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;")
            assert lit > 5000, lit  # the grid, the axes and, once fitted, the bodies: measured 7866 pixels
            assert driver.execute_script("return fetch('/assets/..%2Fserver.py').then(r => r.status)") == 404
            record = driver.find_element(By.ID, "record")
            assert record.text == "Pause recording"
            record.click()  # pause, then record again
            deadline = time.monotonic() + 5
            recorded = driver.find_element(By.ID, "recorded")
            while time.monotonic() < deadline and (record.text != "Record" or "(paused)" not in recorded.text):
                time.sleep(0.1)
            assert record.text == "Record" and "(paused)" in recorded.text, recorded.text
            record.click()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and record.text != "Pause recording":
                time.sleep(0.1)
            assert record.text == "Pause recording"
            driver.find_element(By.ID, "stop").click()
            proc.wait(timeout=60)
        finally:
            driver.quit()
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    store = zarr.open_group(str(tmp_path / "out" / "loop_live.zarr"), mode="r")
    live = store.attrs["live"]
    assert store.attrs["complete"] is True and live["stopped_by"] == "stop"
    assert live["latency_display_ms"]["frames"] >= 5 and live["latency_display_ms"]["p50"] > 0, live
    assert store.attrs["n_frames"] == live["recorded"] > 0
    assert "stopped by stop" in out
    import av

    with av.open(str(tmp_path / "out" / "loop_live_overlay.mp4")) as video:  # the preview's frames, while recording
        assert sum(1 for _ in video.decode(video=0)) >= 10


@pytest.mark.slow
def test_ctrl_c_during_the_focal_estimate_completes_the_store(tmp_path):
    """Ctrl-C while the people are still gathered for the focal (``live.focal_seconds``
    10 s, more person-frames asked for than 3 s give): the pending window is fitted, the
    focal searched, and the store completes. A page opened to other machines (``--host
    0.0.0.0``) is warned about."""
    import signal

    clip = looped_clip(tmp_path / "loop.mp4", 4)
    proc = subprocess.Popen([sys.executable, "process_video.py", "live", "--source", str(clip), "--realtime",
                             "--no-browser", "--port", "0", "--host", "0.0.0.0", "-o", str(tmp_path / "out"),
                             "--set", "live.focal_seconds=10", "--set", "estimation.focal_min_person_frames=1000"],
                            cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("-> http://" in x for x in lines):
            lines.append(proc.stderr.readline())
            assert lines[-1] or proc.poll() is None, "".join(lines)
        time.sleep(3.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert any("warning: the preview page listens on 0.0.0.0" in x for x in lines), lines
    store = zarr.open_group(str(tmp_path / "out" / "loop_live.zarr"), mode="r")
    assert store.attrs["complete"] is True and store.attrs["live"]["stopped_by"] == "stop"
    assert store.attrs["shot_focal_cue"] == ["people"] and store.attrs["shot_focal_px"][0] > 0
    live = store.attrs["live"]
    # Every frame perceived before Ctrl-C is fitted and stored. How many there are is the
    # machine's speed (80 where perception ran at 17 frames/s for 3 s, 40 at 13 frames/s on
    # a slower 2-core machine), which bench/live.py measures; this asks only for a window's worth.
    assert store.attrs["n_frames"] == live["processed"] == live["recorded"] >= 10, live
    assert live["dropped_fit"] == 0  # gathering the focal's window is only appending


@pytest.mark.slow
@pytest.mark.parametrize("case", ["camera", "url", "file", "port"])
def test_a_bad_source_or_port_gets_one_line(tmp_path, case):
    """A missing camera, an unreachable stream, a missing file and a port in use: one
    line each, exit 2, before any model loads."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    closed = free_port()
    args, expected = {
        "camera": (["--camera", "7"], "no camera at /dev/video7"),
        "url": (["--source", f"tcp://127.0.0.1:{closed}"], "cannot be opened"),
        "file": (["--source", str(tmp_path / "missing.mp4")], "no such file"),
        "port": (["--source", str(DATA / "sample.mp4"), "--port", str(taken.getsockname()[1])], "already in use"),
    }[case]
    try:
        res = live_cli(*args, "--no-browser", "-o", str(tmp_path / "out"), timeout=60)
    finally:
        taken.close()
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_a_realtime_file_drops_what_a_slow_reader_misses_and_a_plain_file_drops_nothing():
    """The capture keeps only the newest frame of a live source (a file at its own
    pace); a file read as fast as the reader goes loses none."""
    from meshstream.live.capture import open_capture

    for realtime in (True, False):
        cap = open_capture(source=str(DATA / "sample.mp4"), realtime=realtime)
        cap.start()
        got = []
        while (c := cap.get(2.0)) is not None:
            got.append(c.frame.index)
            time.sleep(0.1)  # a reader at 10 frames/s against the clip's 30
        cap.close()
        assert got == sorted(got) and cap.captured == 75
        if realtime:
            assert cap.dropped == 75 - len(got) and 20 <= len(got) <= 46, (len(got), cap.dropped)  # measured 31
        else:
            assert cap.dropped == 0 and got == list(range(75))


@pytest.mark.parametrize("realtime", [False, True])
def test_a_capture_closed_midway_accounts_for_every_frame_it_counted(realtime):
    """Closing a capture while its reader holds a decoded frame leaves every counted
    frame taken or dropped (a frame read from a plain file used to be counted after
    the close and neither taken nor dropped)."""
    from meshstream.live.capture import open_capture

    for pause_s in (0.0, 0.05, 0.15):
        cap = open_capture(source=str(DATA / "sample.mp4"), realtime=realtime)
        cap.start()
        taken = sum(cap.get(2.0) is not None for _ in range(3))
        time.sleep(pause_s)
        cap.close()
        assert taken == 3 and cap.captured == taken + cap.dropped, (pause_s, cap.captured, cap.dropped)


def test_one_frame_outputs_concatenate_into_one_store_append():
    """The store's appender writes a second of one-frame windows as one: frames, fits
    and their rows stay in order."""
    from meshstream.stream.messages import BodyFit, Frame, WindowOutput

    def output(i: int, persons: int) -> WindowOutput:
        m = persons
        z = np.zeros
        fit = BodyFit("anny", np.full(m, i), np.arange(1, m + 1), z((m, 3), np.float32), z((m, 2, 3), np.float32),
                      z((m, 4), np.float32), np.full((m, 3), i, np.float32), z((m, 3), np.float32),
                      z((m, 2, 3), np.float32), z((m, 17, 3), np.float32), 500.0, np.array([320, 240], np.float32),
                      z(m, np.float32), z(m, np.float32), np.ones(m, bool)) if m else None
        out = WindowOutput(0, [Frame(i, i / 30, np.zeros((4, 4, 3), np.uint8))], np.array([np.nan], np.float32),
                           500.0, np.ones(1, np.float32), fit=fit)
        if m:
            out.bbox, out.keypoints_blaze, out.transl_raw = z((m, 4)), z((m, 33, 3)), np.full((m, 3), i, np.float32)
        return out

    merged = WindowOutput.concatenate([output(0, 1), output(1, 0), output(2, 2)])
    assert [f.index for f in merged.frames] == [0, 1, 2] and len(merged.focal_raw) == 3
    assert merged.fit.frame_index.tolist() == [0, 2, 2] and merged.fit.track_id.tolist() == [1, 1, 2]
    assert merged.transl_raw[:, 0].tolist() == [0, 2, 2] and merged.bbox.shape == (3, 4)
    with pytest.raises(ValueError, match="several shots"):
        WindowOutput.concatenate([output(0, 1), WindowOutput(1, [], np.zeros(0), None, np.zeros(0))])


def test_the_page_server_serves_only_its_assets_and_its_numbers():
    """The page's routes on loopback: the page, its two assets (nothing else), the
    numbers, Record and Stop."""
    from fastapi.testclient import TestClient

    from meshstream.live.server import make_app
    from meshstream.live.stats import LiveStats

    class Run:
        stats = LiveStats()
        stopped = False

        def request_stop(self):
            self.stopped = True

        def set_recording(self, on):
            self.stats.update(recording=on)

    run = Run()
    client = TestClient(make_app(run, "<cam>"))
    page = client.get("/")
    assert page.status_code == 200 and "&lt;cam&gt;" in page.text and "/assets/live.js" in page.text
    assert client.get("/assets/live.js").status_code == 200
    for bad in ("/assets/index.html", "/assets/..%2F..%2Fprocess_video.py", "/assets/%2e%2e/server.py", "/etc/passwd"):
        assert client.get(bad).status_code == 404, bad
    stats = client.get("/api/stats").json()
    assert stats["recording"] is True and stats["processed"] == 0
    assert client.post("/api/record").json() == {"recording": False}
    assert client.post("/api/record?on=true").json() == {"recording": True}
    assert client.post("/api/stop").json() == {"stopping": True} and run.stopped
    assert json.loads(json.dumps(stats)) == stats
