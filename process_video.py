"""meshstream command line: ``python process_video.py clip.mp4`` (also the ``meshstream`` command).

Thin on purpose: parses arguments, loads the typed config, calls ``stream.run.run`` and
prints a summary. User errors print one line and exit non-zero without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_INPUT_TRUNCATED = 3
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (what is wrong and where to read more), exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_camera_options(p: argparse.ArgumentParser) -> None:
    """The configuration, the camera's focal and the person's height (a run, a batch, live)."""
    p.add_argument("--config", default=None, help="YAML preset, e.g. configs/fast.yaml (over configs/default.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set estimation.chunk_frames=32 (repeatable)")
    focal = p.add_mutually_exclusive_group()
    focal.add_argument("--focal-px", type=float, default=None, help="known focal length in pixels (skips the search)")
    focal.add_argument("--fov-deg", type=float, default=None, help="known horizontal field of view in degrees")
    focal.add_argument("--intrinsics", default=None, metavar="FILE",
                       help="calibrated camera: YAML/JSON with fx, fy, cx, cy [, distortion, width, height], or "
                            "an OpenCV FileStorage file (camera_matrix, distortion_coefficients)")
    p.add_argument("--height-m", type=float, default=None, metavar="M",
                   help="known standing height of the person, metres: every track's body is sized to it "
                        "(a clip of one athlete); depth scales with it")
    p.add_argument("--detector", choices=("mediapipe", "yolo"), default=None,
                   help="mediapipe: BlazePose + HOG, offline (default); yolo: ultralytics YOLO pose, every person in "
                        "one pass (pip install -e '.[yolo]', AGPL-3.0; docs/yolo.md)")
    p.add_argument("--weights", default=None, metavar="NAME|FILE",
                   help="--detector yolo: a model name ultralytics downloads on first use (yolo11n-pose.pt, default; "
                        "yolo11x-pose.pt on a GPU) or a local .pt file")
    p.add_argument("--tracker", choices=("ours", "bytetrack", "botsort"), default=None,
                   help="ours (default), or ultralytics' ByteTrack or BoT-SORT (the yolo extra)")


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """The flags that set the configuration (shared by a run and a batch)."""
    _add_camera_options(p)
    p.add_argument("--body-model", choices=("anny", "smplx"), default=None,
                   help="anny (bundled, default) or smplx (your licensed SMPL-X files, see --model-path)")
    p.add_argument("--model-path", default=None, metavar="DIR",
                   help="SMPL-X: folder with SMPLX_NEUTRAL.npz (or .pkl; MALE/FEMALE with --gender), or the file")
    p.add_argument("--gender", choices=("neutral", "male", "female"), default=None, help="SMPL-X model gender")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--start", type=float, default=None, help="start time, seconds")
    p.add_argument("--end", type=float, default=None, help="end time, seconds")
    p.add_argument("--every", type=int, default=None, help="keep every n-th frame")
    p.add_argument("--no-overlay", action="store_true", help="do not write the overlay video")
    p.add_argument("--export", default=None, metavar="FORMATS",
                   help="also write animation files per track: comma-separated from bvh,glb,fbx,npz,smpl "
                        "(later, without re-running: meshstream export OUT.zarr --to glb,npz)")
    p.add_argument("--report", action="store_true",
                   help="also write the motion report (CSV per track, plots, offline HTML; later: meshstream report "
                        "OUT.zarr)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log what each stage decides")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="meshstream",
        description="Video of people -> metric 3D bodies (pelvis depth, pose, shape) and the camera "
                    "(focal length, translation), written to a Zarr store and an overlay video. "
                    "Subcommands: batch, live, export, report, calibrate (meshstream SUBCOMMAND --help).",
    )
    p.add_argument("input", help="video file (any format FFmpeg reads) or a folder of images")
    p.add_argument("-o", "--out", default=None, help="output folder (default: output.dir of the config, 'out')")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished store of this input in the output folder (same settings) after "
                        "its last finished chunk; without a store, a normal run")
    p.add_argument("--device", default=None, help="--detector yolo: where YOLO runs, auto (default), cpu, cuda or cuda:N")
    _add_config_options(p)
    return p


def build_batch_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="meshstream batch",
                description="Many clips into one output folder, one after another in this process or on a Ray "
                            "pool (started here, or a cluster with --address); a table and OUT/batch.json "
                            "summarise them.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video files, folders (their videos; a folder of images is one clip), glob patterns or "
                        "a .txt manifest with one path per line")
    p.add_argument("-o", "--out", required=True, help="output folder (on a cluster: a path every node reaches)")
    p.add_argument("--executor", choices=("threaded", "inline", "ray"), default="threaded",
                   help="threaded: clips one after another here, decoding, fitting and writing overlapped "
                        "(default); inline: the same on one thread; ray: clip actors and a pool of fitter actors")
    p.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                   help="Ray cluster to join (default: start Ray on this machine for the batch)")
    p.add_argument("--fitters", type=int, default=1, help="ray: fitter actors in the pool (default 1)")
    p.add_argument("--gpus-per-fitter", type=float, default=0.0, metavar="F",
                   help="ray: GPUs each fitter actor reserves (default 0)")
    p.add_argument("--clips", type=int, default=1, help="ray: clips processed at once, one actor each (default 1)")
    p.add_argument("--gpus-per-clip", type=float, default=0.0, metavar="F",
                   help="ray: GPUs each clip actor reserves, for its perception (--detector yolo; default 0)")
    p.add_argument("--device", default=None, help="where fitters run (cpu)")
    p.add_argument("--resume", action="store_true", help="skip finished clips and continue unfinished ones")
    _add_config_options(p)
    return p


def build_export_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="meshstream export", description="Write animation files from a finished Zarr store, per track.")
    p.add_argument("store", help="a .zarr store written by meshstream")
    p.add_argument("--to", required=True, metavar="FORMATS", help="comma-separated formats: bvh,glb,fbx,npz,smpl")
    p.add_argument("-o", "--out", default=None, help="output folder (default: beside the store)")
    p.add_argument("--model-path", default=None, metavar="DIR",
                   help="SMPL-X stores: the model folder or file (default: the one the store was made with)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def build_report_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="meshstream report",
                description="Motion analysis of a store, per track: speed, distance, joint angles, foot contacts, "
                            "steps and jumps as CSV, plots and one HTML page that opens offline.")
    p.add_argument("store", help="a .zarr store written by meshstream")
    p.add_argument("-o", "--out", default=None, help="output folder (default: beside the store)")
    p.add_argument("--tracks", default=None, metavar="IDS", help="only these tracks, e.g. 1,3 (default: all)")
    p.add_argument("--format", default="html,csv,png", metavar="FORMATS",
                   help="comma-separated from html,csv,png (default: all three)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def build_calibrate_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="meshstream calibrate",
        description="Camera intrinsics (focal length, principal point, lens distortion) from a video or image "
                    "folder of a printed chessboard, written as the file --intrinsics reads.")
    p.add_argument("input", help="video file or folder of images showing the whole board in many poses")
    p.add_argument("--board", default="9x6", metavar="COLSxROWS",
                   help="inner corners per row and column (a board of 10 by 7 squares has 9x6; default 9x6)")
    p.add_argument("-o", "--out", default=None, metavar="FILE",
                   help="YAML file to write (default: INPUT_NAME_intrinsics.yaml in the current folder)")
    p.add_argument("--every", type=int, default=None,
                   help="search every n-th frame (default: so that at most 200 frames of a video are searched)")
    p.add_argument("--max-views", type=int, default=40, help="views the fit uses at most, spread over the video")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def build_live_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="meshstream live",
                description="A webcam, a network stream or a file played live: bodies fitted frame by frame, shown "
                            "on a preview page (overlay, numbers, 3D view, Stop and Record) and recorded to the "
                            "same Zarr store as an offline run.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera", type=int, default=None, metavar="N", help="V4L2 camera /dev/videoN")
    src.add_argument("--source", default=None, metavar="URL_OR_FILE",
                     help="rtsp://, rtmp://, http(s)://, udp://, tcp://, srt:// stream, or a video file")
    p.add_argument("--realtime", action="store_true",
                   help="play a file at its own pace, dropping frames the run cannot keep up with (as a camera)")
    p.add_argument("-o", "--out", default=None, help="output folder (default: output.dir of the config, 'out')")
    p.add_argument("--port", type=int, default=8765, help="preview page port (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address the page listens on (default 127.0.0.1; 0.0.0.0 opens it to other machines)")
    p.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--no-record", action="store_true",
                   help="start without writing the store (the page's Record button starts it)")
    p.add_argument("--overlay", action="store_true", help="also write the preview's frames as OUT/NAME_overlay.mp4")
    p.add_argument("--device", default=None, help="--detector yolo: where YOLO runs, auto (default), cpu, cuda or cuda:N")
    _add_camera_options(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log what each stage decides")
    p.set_defaults(max_frames=None, start=None, end=None, every=None, body_model=None, gender=None, model_path=None,
                   no_overlay=True)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        return _guarded(_export, build_export_parser().parse_args(argv[1:]))
    if argv[:1] == ["batch"]:
        return _guarded(_batch, build_batch_parser().parse_args(argv[1:]))
    if argv[:1] == ["report"]:
        return _guarded(_report, build_report_parser().parse_args(argv[1:]))
    if argv[:1] == ["calibrate"]:
        return _guarded(_calibrate, build_calibrate_parser().parse_args(argv[1:]))
    if argv[:1] == ["live"]:
        return _guarded(_live, build_live_parser().parse_args(argv[1:]))
    return _guarded(_run, build_parser().parse_args(argv))


def _guarded(command, args: argparse.Namespace) -> int:
    """Runs a command; user errors become one line on stderr and a non-zero exit."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="meshstream: %(levelname)s: %(message)s")
    from meshstream.stream.errors import MeshstreamError

    try:
        return command(args)
    except MeshstreamError as exc:
        print(f"meshstream: {'error: ' if exc.exit_code else ''}{exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("meshstream: interrupted; the store keeps every finished chunk (complete=false): run the same "
              "command with --resume to continue", file=sys.stderr)
        return EXIT_INTERRUPTED


def _config(args: argparse.Namespace, device_sets_fitters: bool = False):
    """The validated configuration of a run's, a batch's or a live run's flags
    (``device_sets_fitters``: a batch's ``--device`` also places its fitters)."""
    from meshstream.stream.config import load_config

    overrides = list(args.overrides)
    flags: dict[str, str] = {}  # config key -> the flag the user typed, for error messages
    for value, key, flag in ((args.focal_px, "estimation.focal_px", "--focal-px"),
                             (args.fov_deg, "estimation.fov_deg", "--fov-deg"),
                             (args.max_frames, "decode.max_frames", "--max-frames"),
                             (args.start, "decode.start_s", "--start"), (args.end, "decode.end_s", "--end"),
                             (args.every, "decode.every", "--every"),
                             (args.body_model, "estimation.body_model", "--body-model"),
                             (args.gender, "estimation.gender", "--gender"),
                             (args.height_m, "estimation.person_height_m", "--height-m"),
                             (args.model_path, "estimation.model_path", "--model-path"),
                             (args.intrinsics, "estimation.intrinsics", "--intrinsics"),
                             (args.detector, "perception.detector", "--detector"),
                             (args.weights, "yolo.weights", "--weights"),
                             (args.tracker, "tracking.tracker", "--tracker"),
                             (None if device_sets_fitters else args.device, "yolo.device", "--device"),
                             (args.out, "output.dir", "-o")):
        if value is not None:
            overrides.append(f"{key}={json.dumps(value if isinstance(value, (int, float)) else str(value))}")
            flags[key] = flag
    if args.no_overlay:
        overrides.append("output.overlay=false")
    config = load_config(args.config, overrides, flags)
    if config.perception.detector != "yolo" and (args.weights is not None
                                                  or args.device is not None and not device_sets_fitters):
        from meshstream.stream.errors import InputError

        raise InputError(f"{'--weights' if args.weights is not None else '--device'} is for the YOLO detector; "
                         "add --detector yolo (pip install -e '.[yolo]')")
    return config


def _software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meshstream")
    except PackageNotFoundError:
        return "0+unknown"


def _formats(args: argparse.Namespace) -> list[str] | None:
    """The export formats asked for (checked before any processing)."""
    if not args.export:
        return None
    from meshstream.export.files import parse_formats

    return parse_formats(args.export)


def _run(args: argparse.Namespace) -> int:
    from meshstream.stream.errors import InputError
    from meshstream.stream.remote import is_url
    from meshstream.stream.run import run

    if args.out and is_url(args.out):
        raise InputError(f"-o {args.out}: a run writes to a folder; for a URL use meshstream batch {args.input} "
                         f"-o {args.out}")
    config = _config(args)
    formats = _formats(args)
    software = _software_version()
    summary = run(args.input, config, out_dir=args.out, progress=not args.quiet, software_version=software,
                  resume=args.resume)
    focal = "n/a"
    if not math.isnan(summary.focal_px):
        where = "images' EXIF" if summary.from_images else "video's"
        people = {"people": f"estimated from {summary.focal_person_frames} person-frames",
                  "floor": f"estimated from the floor under {summary.focal_person_frames} person-frames",
                  "lines": "estimated from the scene's straight lines"}.get(
                      summary.focal_cue, "estimated from the camera's rotation")
        source = {"estimated": people,
                  "metadata": f"from the {where} 35 mm-equivalent focal length"}.get(summary.focal_source,
                                                                                      summary.focal_source)
        focal = f"{summary.focal_px:.1f} px, {summary.focal_fov_deg:.1f}° horizontal FOV ({source})"
    if summary.shots > 1:
        focal += f", first of {summary.shots} shots"
    lines = [
        f"frames      {summary.frames} in {summary.seconds:.1f} s ({summary.fps:.2f} frames/s after "
        f"{summary.startup_seconds:.1f} s of model loading)",
        f"persons     {summary.person_frames} person-frames in {summary.tracks} tracks{_statures(summary.statures_m)}",
        f"focal       {focal}",
    ]
    if summary.camera_turn_deg >= 1.0:  # a still camera's turn reads 0
        lines.append(f"camera      turned up to {summary.camera_turn_deg:.1f}° from its shot's first frame "
                     "(camera/rotation)")
    lines.append(f"zarr        {summary.zarr_path}")
    if summary.overlay_path:
        lines.append(f"overlay     {summary.overlay_path}")
    print("\n".join(lines))
    for note in summary.notes:
        print(f"meshstream: note: {note}", file=sys.stderr)
    code = EXIT_INPUT_TRUNCATED if summary.input_truncated else 0
    if formats:
        code = max(code, _write_exports(summary.zarr_path, formats, summary.zarr_path.parent))
    if args.report:
        code = max(code, _write_report(summary.zarr_path))
    return code


def _batch(args: argparse.Namespace) -> int:
    from meshstream.stream.batch import EXIT_SOME_FAILED, expand_inputs, run_batch
    from meshstream.stream.errors import InputError
    from meshstream.stream.remote import is_url

    config = _config(args, device_sets_fitters=True)
    formats = _formats(args)
    for value, flag in ((args.fitters, "--fitters"), (args.clips, "--clips")):
        if value < 1:
            raise InputError(f"{flag} {value}: give at least 1")
    for value, flag in ((args.gpus_per_fitter, "--gpus-per-fitter"), (args.gpus_per_clip, "--gpus-per-clip")):
        if value < 0:
            raise InputError(f"{flag} {value}: give 0 or more")
    if args.executor != "ray" and (args.address or args.fitters != 1 or args.clips != 1 or args.gpus_per_fitter
                                   or args.gpus_per_clip):
        raise InputError("--address, --fitters, --clips, --gpus-per-fitter and --gpus-per-clip need --executor ray")
    clips = expand_inputs(args.inputs)
    out = args.out if is_url(args.out) else Path(args.out).expanduser()
    result = run_batch(clips, config, out, executor=args.executor, address=args.address, fitters=args.fitters,
                       gpus_per_fitter=args.gpus_per_fitter, clips_in_flight=args.clips, gpus_per_clip=args.gpus_per_clip,
                       device=args.device or "cpu",
                       resume=args.resume, software_version=_software_version(), progress=not args.quiet,
                       exports=formats, report=args.report)
    print(result.table())
    frames = sum(o.summary.frames for o in result.outcomes if o.summary is not None)
    print(f"batch       {len(result.outcomes) - len(result.failed)} of {len(result.outcomes)} clips, {frames} "
          f"frames in {result.seconds:.1f} s ({frames / max(result.seconds, 1e-9):.2f} frames/s); "
          f"{str(out).rstrip('/')}/batch.json")
    code = 0
    for o in result.outcomes:
        for path in o.exported:
            print(f"export      {path}")
        for path in o.reported:
            print(f"report      {path}")
        for failure in o.export_failures:
            print(f"meshstream: error: export failed: {failure}", file=sys.stderr)
            code = EXIT_USER_ERROR
    for o in result.failed:
        reason = o.reason if o.reason.startswith(o.input) else f"{o.input}: {o.reason}"
        print(f"meshstream: error: {reason}", file=sys.stderr)
    return EXIT_SOME_FAILED if result.failed else code


def _statures(statures: dict[int, float], most: int = 6) -> str:
    """`` (standing heights 1.57, 1.62 m)``: the tracks' fitted heights, in track order."""
    if not statures:
        return ""
    shown = ", ".join(f"{h:.2f}" for h in list(statures.values())[:most])
    more = f" and {len(statures) - most} more" if len(statures) > most else ""
    return f" (standing heights {shown}{more} m)"


def _write_exports(store, formats: list[str], out, model_path: str | None = None) -> int:
    from meshstream.export.files import export_store

    written, failures = export_store(store, formats, out, model_path=model_path)
    for path in written:
        print(f"export      {path}")
    for failure in failures:
        print(f"meshstream: error: export failed: {failure}", file=sys.stderr)
    return EXIT_USER_ERROR if failures else 0


def _write_report(store, out=None, tracks=None, formats: list[str] | None = None, after_run: bool = True) -> int:
    """Writes a store's report. After a run, a store that cannot be reported is one line
    (a store without people a note) and the run's outputs stay; ``meshstream report``
    raises instead (one line, exit 2)."""
    from meshstream.report.files import FORMATS, write_report
    from meshstream.report.motion import NothingToReport
    from meshstream.stream.errors import MeshstreamError

    try:
        written = write_report(store, out, tracks, formats or list(FORMATS))
    except NothingToReport as exc:
        if not after_run:
            raise
        print(f"meshstream: note: no report: {exc}", file=sys.stderr)  # like the run: nobody found is no failure
        return 0
    except MeshstreamError as exc:
        if not after_run:
            raise
        print(f"meshstream: error: report: {exc}", file=sys.stderr)  # the store and the other outputs stay
        return exc.exit_code
    for path in written:
        print(f"report      {path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from meshstream.report.files import parse_formats, parse_tracks

    return _write_report(args.store, args.out, parse_tracks(args.tracks), parse_formats(args.format),
                         after_run=False)


def _live(args: argparse.Namespace) -> int:
    from meshstream.live.run import print_live_summary, run_live
    from meshstream.stream.errors import ConfigError

    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration {args.duration:g}: must be a number of seconds, > 0")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be in [0, 65535]")
    config = _config(args)
    summary = run_live(config, camera=args.camera, source=args.source, realtime=args.realtime,
                       out_dir=config.output.dir, host=args.host, port=args.port, open_browser=not args.no_browser,
                       duration_s=args.duration, record=not args.no_record, overlay=args.overlay,
                       software_version=_software_version())
    print_live_summary(summary)
    return 0


def _export(args: argparse.Namespace) -> int:
    from meshstream.export.files import parse_formats

    return _write_exports(args.store, parse_formats(args.to), args.out, args.model_path)


def _calibrate(args: argparse.Namespace) -> int:

    from meshstream.stream.calibrate import board_views, calibrate, parse_board, write_intrinsics
    from meshstream.stream.errors import InputError
    from meshstream.stream.sources import open_source

    board = parse_board(args.board)
    if args.every is not None and args.every < 1:
        raise InputError(f"--every {args.every}: give a positive step")
    if args.max_views < 4:
        raise InputError(f"--max-views {args.max_views}: the fit needs at least 4 views")
    out = Path(args.out if args.out else f"{Path(args.input.rstrip('/')).stem}_intrinsics.yaml").expanduser()
    if not out.parent.is_dir():
        raise InputError(f"-o {out}: folder {out.parent} does not exist; create it or choose another file")
    with open_source(args.input, random_access="never") as source:
        info = source.info
        every = args.every or max(1, math.ceil((info.n_frames or 0) / 200))
        frames = (f for i, f in enumerate(source) if i % every == 0)
        views, scanned = board_views(frames, board)
    cal = calibrate(views, (info.width, info.height), board, frames_scanned=scanned, max_views=args.max_views)
    path = write_intrinsics(cal, out, source=args.input)
    intr, std = cal.intrinsics, cal.std_px
    fov = math.degrees(2 * math.atan(0.5 * info.width / intr.fx))
    worst = int(cal.per_view_rms_px.argmax())
    dist = " ".join(f"{k} {v:.4f}" for k, v in zip(("k1", "k2", "p1", "p2", "k3"), intr.distortion))
    print("\n".join([
        f"views       {len(cal.frame_index)} used, board {board[0]}x{board[1]} found in {scanned} searched frames "
        f"(tilted up to {cal.tilt_deg.max():.0f}°)",
        f"focal       fx {intr.fx:.1f} ± {std[0]:.1f} px, fy {intr.fy:.1f} ± {std[1]:.1f} px "
        f"({fov:.1f}° horizontal FOV)",
        f"centre      cx {intr.cx:.1f} ± {std[2]:.1f}, cy {intr.cy:.1f} ± {std[3]:.1f} px",
        f"distortion  {dist}",
        f"error       {cal.rms_px:.2f} px RMS (worst view {cal.per_view_rms_px[worst]:.2f} px, frame "
        f"{cal.frame_index[worst]})",
        f"intrinsics  {path}   (use: meshstream VIDEO --intrinsics {path})",
    ]))
    for warning in cal.warnings():
        print(f"meshstream: warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
