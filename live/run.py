"""run_live(): ``meshstream live`` end to end — the wiring of source, clip stages,
preview, store and page server.

Everything that can fail on the user's input fails before the models load: the
port, the camera or stream, the calibration file, the output folder.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


def live_stem(camera: int | None, source: str | None) -> str:
    """The store's name: ``camera0``, a file's stem and ``_live`` (beside an offline run's
    store of the same file, not over it), or a stream's host and path."""
    from .capture import is_stream_url

    if camera is not None:
        return f"camera{camera}"
    if is_stream_url(source):
        rest = source.split("://", 1)[1].split("?", 1)[0]
        return re.sub(r"[^A-Za-z0-9._-]+", "_", rest).strip("_.") or "stream"
    return f"{Path(source).stem}_live"


def run_live(config, *, camera: int | None, source: str | None, realtime: bool, out_dir: str, host: str,
             port: int, open_browser: bool, duration_s: float | None, record: bool, overlay: bool,
             software_version: str):
    """Runs a live source until stopped (the page's Stop, Ctrl-C, ``duration_s``, or the
    source's end) and completes its store.

    Args:
        config: The validated configuration (``config.live`` applies).
        camera: A V4L2 camera's index, or ``None``.
        source: A stream URL or a file (with ``camera`` ``None``).
        realtime: Play a file at its own pace.
        out_dir: Output folder.
        host, port: Where the page is served (port 0: any free port).
        open_browser: Open the page in the default browser.
        duration_s: Stop after this many seconds (``None``: until stopped).
        record: Write the store from the start (else only once Record is pressed).
        overlay: Also write the preview's frames as ``<stem>_overlay.mp4`` while recording.
        software_version: Stored in the store's attributes.

    Returns:
        The :class:`~meshstream.live.session.LiveSummary`, with the store's path as ``store``.
    """
    import torch

    from meshstream.export.overlay import OverlayWriter
    from meshstream.stream.intrinsics import FrameUndistorter, load_intrinsics
    from meshstream.stream.pipeline import build_body, build_live
    from meshstream.stream.run import check_output_dir

    from .capture import open_capture
    from .preview import Preview
    from .server import PageServer, check_port, make_app
    from .session import LiveRun, StoreRecorder
    from .stats import LiveStats

    check_port(host, port)
    capture = open_capture(camera=camera, source=source, realtime=realtime)
    if capture.drop and not capture.realtime:  # a camera or a stream: read on (and drop) while the models load
        capture.start()
    info = capture.info
    server = run = None
    try:
        intrinsics = undistort = None
        if config.estimation.intrinsics is not None:
            intrinsics = load_intrinsics(config.estimation.intrinsics, info.width, info.height)
            undistort = None if intrinsics.is_ideal else FrameUndistorter(intrinsics)
        out = Path(out_dir)
        check_output_dir(out)
        stem = live_stem(camera, source)
        torch.set_num_threads(1)  # perception and fitting each keep a core busy on their own thread
        # The fitter's many small torch ops give up the GIL and wait to take it back: a
        # shorter switch interval cut that wait (on the 3 s sample: 13.8 -> 15.4 frames/s).
        sys.setswitchinterval(0.0005)
        body = build_body(config.estimation)
        clip, fitter = build_live(config, info, out, stem, software_version, body=body, intrinsics=intrinsics)
        clip.setup(fitter)
        stats = LiveStats(recording=record)
        if clip.solver.focal is not None:
            stats.update(focal_px=float(clip.solver.focal), focal_state="given")
        lc = config.live
        video = OverlayWriter(out / f"{stem}_overlay.mp4", info.width, info.height, info.fps) if overlay else None
        preview = Preview(mesher=clip.mesher if lc.preview_mesh else None, faces=body[0].faces,
                          principal_point=clip.solver.principal_point, quality=lc.preview_quality, stats=stats,
                          overlay=video)
        run = LiveRun(capture=capture, clip=clip, preview=preview,
                      recorder=StoreRecorder(clip=clip, every_s=lc.store_every_s, stats=stats), stats=stats,
                      duration_s=duration_s, undistort=undistort, overlap=lc.overlap)
        server = PageServer(make_app(run, capture.name), host, port)
        server.start()
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(f"meshstream: warning: the preview page listens on {host}:{server.port}, reachable from other "
                  "machines; it has no password", file=sys.stderr)
        print(f"meshstream live: {capture.name} ({info.width}x{info.height}) -> {server.url}  (Stop there or "
              "Ctrl-C to finish)", file=sys.stderr, flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        run.start()
        try:
            run.wait()
        except KeyboardInterrupt:
            run.stopped_by = "stop"
        summary = run.finish()
        summary.store = clip.zarr_path
        summary.overlay = video.path if video is not None else None
        return summary
    except BaseException:
        if run is None:
            capture.close()
        raise
    finally:
        if server is not None:
            time.sleep(0.3)  # the page's last frames and its "run ended" notice
            server.close()


def print_live_summary(summary) -> None:
    """The live run's summary on stdout."""
    f = summary.figures
    lat = f["latency_display_ms"]
    shown = (f"capture to display p50 {lat['p50']} ms, p95 {lat['p95']} ms over {lat['frames']} frames"
             if lat["frames"] else "no frame was shown in a browser")
    ready = f["latency_ready_ms"]
    print(f"frames      {f['processed']} processed at {f['fps']} frames/s, {f['captured']} captured, "
          f"{f['dropped_capture'] + f['dropped_fit']} dropped")
    stages = ", ".join(f"{k} {v} ms" for k, v in f["stage_ms_p50"].items())
    print(f"stages      median per frame: {stages}")
    print(f"latency     capture to preview encoded p50 {ready['p50']} ms, p95 {ready['p95']} ms; {shown}")
    print(f"stored      {f['recorded']} frames in {summary.store} (stopped by {summary.stopped_by})")
    if summary.overlay is not None:
        print(f"overlay     {summary.overlay}")
    for note in summary.notes:
        print(f"note        {note}")

