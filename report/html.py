"""The report's plots (matplotlib, rendered to PNG) and its self-contained HTML page.

The page embeds every image as a data URI and its style inline: it opens from a disk or
an e-mail attachment with no network.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path

import numpy as np

from .motion import MAX_GAP_S, MOVING_MPS, TOP_SPEED_WINDOW_S, TrackReport

log = logging.getLogger(__name__)

_LEFT, _RIGHT = "#1f77b4", "#d62728"
_THUMBS = 3


def figures(reports: list[TrackReport]) -> dict[str, bytes]:
    """PNG plots: ``paths`` (every track's path on the floor, seen from above) and
    ``track<ID>`` (speed, joint angles and pelvis height over time) per track."""
    from matplotlib.figure import Figure  # drawn without pyplot: no GUI backend, no global state

    out = {"paths": _png(_paths_figure(Figure(figsize=(6.0, 5.0)), reports))}
    for r in reports:
        out[f"track{r.summary.track_id}"] = _png(_track_figure(Figure(figsize=(9.0, 9.5)), r))
    return out


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _paths_figure(fig, reports: list[TrackReport]):
    ax = fig.add_subplot()
    shots = len({r.motion.shot for r in reports}) > 1  # each shot has its own world: say which
    for r in reports:
        x, z = r.columns["pelvis_x_m"], r.columns["pelvis_z_m"]
        label = f"track {r.summary.track_id}" + (f" (shot {r.motion.shot})" if shots else "")
        line, = ax.plot(x, -z, lw=1.5, label=label)
        ax.plot(x[:1], -z[:1], "o", color=line.get_color())
        ax.plot(x[-1:], -z[-1:], ">", color=line.get_color())
    ax.plot([0], [0], "k^", ms=9, label="camera")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x, metres (right of the camera)")
    ax.set_ylabel("distance ahead of the camera, metres")
    ax.set_title("Paths on the floor, from above (o start, > end)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _broken(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns with a NaN row inserted in every gap longer than
    :data:`~meshstream.report.motion.MAX_GAP_S`, so that plotted lines break there."""
    t = columns["time_s"]
    cut = np.flatnonzero(np.diff(t) > MAX_GAP_S) + 1
    if not len(cut):
        return columns
    out = {k: np.insert(v.astype(np.float64), cut, np.nan) for k, v in columns.items()}
    out["time_s"] = np.insert(t, cut, 0.5 * (t[cut - 1] + t[cut]))
    return out


def _track_figure(fig, r: TrackReport):
    c = _broken(r.columns)
    t = c["time_s"]
    axes = fig.subplots(4, 1, sharex=True)
    axes[0].plot(t, c["speed_mps"], "k", lw=1.2)
    axes[0].axhline(MOVING_MPS, color="grey", ls=":", lw=0.8)
    axes[0].set_ylabel("speed, m/s")
    for ax, joints in ((axes[1], ("knee_flexion", "hip_flexion")), (axes[2], ("elbow_flexion",))):
        for joint, style in zip(joints, ("-", "--")):
            for side, colour in (("left", _LEFT), ("right", _RIGHT)):
                ax.plot(t, c[f"{joint}_{side}_deg"], style, color=colour, lw=1.1,
                        label=f"{joint.replace('_', ' ')} {side}")
        ax.set_ylabel("degrees")
        ax.legend(fontsize=7, ncol=2, loc="upper right")
    axes[2].plot(t, c["trunk_lean_deg"], color="green", lw=1.1, label="trunk lean")
    axes[2].legend(fontsize=7, ncol=3, loc="upper right")
    axes[3].plot(t, c["height_m"], "k", lw=1.2, label="pelvis height")
    top = float(np.nanmax(c["height_m"])) if np.isfinite(c["height_m"]).any() else 1.0
    for k, (side, colour) in enumerate((("left", _LEFT), ("right", _RIGHT))):
        on = np.nan_to_num(c[f"foot_contact_{side}"]).astype(bool)
        axes[3].fill_between(t, 0.05 * k * top, 0.05 * (k + 1) * top, where=on, color=colour, alpha=0.6,
                             step="mid", label=f"{side} foot down")
    axes[3].set_ylabel("metres")
    axes[3].set_xlabel("time, seconds")
    axes[3].legend(fontsize=7, ncol=3, loc="upper right")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"Track {r.summary.track_id}")
    fig.tight_layout()
    return fig


def thumbnails(store, store_path: Path, report: TrackReport, count: int = _THUMBS) -> tuple[list[bytes], str]:
    """JPEG crops around the person at ``count`` moments of the track, from the overlay
    video beside the store (the source video, with the box drawn, when there is none).

    Returns:
        The JPEGs and where they came from (``""`` when no video could be read).
    """
    import av
    import cv2

    from meshstream.stream.sources import rotate_frame

    stem = store_path.name.removesuffix(".zarr")
    overlay = store_path.parent / f"{stem}_overlay.mp4"
    source = Path(str(store.attrs.get("source") or ""))
    video = overlay if overlay.is_file() else source if source.is_file() else None
    if video is None:
        return [], ""
    g = store[f"tracks/{report.summary.track_id}"]
    pick = np.unique(np.linspace(0, len(report.motion.rows) - 1, count).round().astype(int))
    pts = store["frames/pts_seconds"][:][report.motion.rows[pick]]
    boxes = g["bbox_xyxy"].oindex[pick]
    out = []
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            for when, box in zip(pts, boxes):
                frame = _frame_at(container, stream, float(when))
                if frame is None:
                    continue
                img = frame.to_ndarray(format="bgr24")
                if video == source:  # the overlay was drawn upright; the source may need turning
                    img = rotate_frame(img, int(store.attrs.get("rotation_deg") or 0))
                    cv2.rectangle(img, tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:]), (40, 200, 40), 2)
                out.append(_crop_jpeg(img, box))
    except (av.error.FFmpegError, OSError, ValueError, cv2.error) as exc:  # thumbnails are a nicety
        log.warning("no thumbnails from %s: %s", video, exc)
        return [], ""
    return out, "overlay video" if video == overlay else "source video (no overlay video beside the store)"


def _frame_at(container, stream, when: float):
    """The first decoded frame at or after ``when`` seconds (less half a frame)."""
    rate = float(stream.average_rate or 25)
    if stream.time_base:
        container.seek(max(int((when - 1.0) / stream.time_base), 0), stream=stream, backward=True)
    for frame in container.decode(stream):
        if frame.time is not None and frame.time >= when - 0.5 / rate:
            return frame
    return None


def _crop_jpeg(img: np.ndarray, box: np.ndarray, height: int = 240) -> bytes:
    import cv2

    h, w = img.shape[:2]
    x0, y0, x1, y1 = box
    pad = 0.25 * max(x1 - x0, y1 - y0)
    x0, y0 = int(max(x0 - pad, 0)), int(max(y0 - pad, 0))
    x1, y1 = int(min(x1 + pad, w)), int(min(y1 + pad, h))
    crop = img[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else img
    scale = height / crop.shape[0]
    crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def _img(data: bytes, mime: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{base64.b64encode(data).decode()}">'


def _fmt(value, unit: str = "", digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}{unit}" if isinstance(value, float) else f"{value}{unit}"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.caveat{background:#fff4d6;border-left:4px solid #e0a800;padding:0.4em 0.8em;margin:0.3em 0}
img{max-width:100%}.thumbs img{height:200px;margin-right:6px}
"""


def write_html(path: Path, store, store_path: Path, reports: list[TrackReport], figs: dict[str, bytes]) -> Path:
    """The self-contained page: paths, the summary table, then each track's caveats,
    numbers, curves and thumbnails."""
    s = [r.summary for r in reports]
    head = ("<tr><th>track</th><th>seen, s</th><th>distance, m</th><th>mean speed, m/s</th>"
            f"<th>top speed ({TOP_SPEED_WINDOW_S:g} s), m/s</th><th>moving, s</th><th>steps</th><th>cadence, /min</th>"
            "<th>jumps</th><th>highest jump, m</th><th>stature, m</th><th>focal from</th><th>scale from</th></tr>")
    rows = "".join(
        f"<tr><td>{x.track_id}</td><td>{_fmt(x.duration_s)}</td><td>{_fmt(x.distance_m)}</td>"
        f"<td>{_fmt(x.mean_speed_mps)}</td><td>{_fmt(x.top_speed_mps)}</td><td>{_fmt(x.time_moving_s, digits=1)}</td>"
        f"<td>{x.steps}</td><td>{_fmt(x.cadence_spm, digits=0)}</td><td>{x.jumps}</td>"
        f"<td>{_fmt(x.jump_height_m)}</td><td>{_fmt(x.stature_m)}</td><td>{html.escape(str(x.focal_cue))}</td>"
        f"<td>{html.escape(x.scale)}</td></tr>" for x in s)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>meshstream report: {html.escape(store_path.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(store_path.name)}</h1>",
        f"<p>Source {html.escape(str(store.attrs.get('source')))}; {int(store.attrs.get('n_frames') or 0)} frames; "
        f"{len(reports)} track(s). Metres, seconds, degrees, in the levelled world of the exports "
        "(floor at y = 0). Definitions: docs/report.md.</p>",
        _img(figs["paths"], "image/png", "paths on the floor"),
        f"<h2>Summary</h2><table>{head}{rows}</table>",
    ]
    for r in reports:
        x = r.summary
        parts.append(f"<h2 id='track{x.track_id}'>Track {x.track_id}</h2>")
        parts += [f"<div class='caveat'>{html.escape(c)}</div>" for c in r.motion.caveats]
        rom = "".join(f"<tr><td>{k.replace('_', ' ')}</td><td>{lo:.0f}</td><td>{hi:.0f}</td><td>{hi - lo:.0f}</td></tr>"
                      for k, (lo, hi) in x.range_of_motion_deg.items())
        parts.append(
            "<table><tr><th>evidence</th><th></th></tr>"
            f"<tr><td>frames seen / missing in its span</td><td>{x.frames_seen} / {x.frames_missing}</td></tr>"
            f"<tr><td>fit error (median), px</td><td>{_fmt(x.fit_error_px, digits=1)}</td></tr>"
            f"<tr><td>frames the fit trusts</td><td>{100 * x.fit_ok_fraction:.0f} %</td></tr>"
            f"<tr><td>stride length (median), m</td><td>{_fmt(x.stride_length_m)}</td></tr>"
            f"<tr><td>standing pelvis height, m</td><td>{_fmt(x.standing_pelvis_m)}</td></tr></table>"
            f"<table><tr><th>joint</th><th>min, °</th><th>max, °</th><th>range, °</th></tr>{rom}</table>")
        parts.append(_img(figs[f"track{x.track_id}"], "image/png", f"track {x.track_id} curves"))
        thumbs, origin = thumbnails(store, store_path, r)
        if thumbs:
            parts.append(f"<p>From the {html.escape(origin)}:</p><div class='thumbs'>"
                         + "".join(_img(j, "image/jpeg", f"track {x.track_id}") for j in thumbs) + "</div>")
    # Counts the images the browser decoded (read by the tests in headless Chromium).
    parts.append("<script>addEventListener('load',()=>{const i=[...document.images];document.body.dataset."
                 "imagesShown=i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length})</script>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
