"""``meshstream report``: a store's tracks as CSV tables, PNG plots and one offline HTML page.

Files, for a store ``<clip>.zarr`` written to ``DIR``:

- ``<clip>_track<ID>.csv``: one row per frame the track was seen (columns in
  ``docs/report.md``);
- ``<clip>_summary.csv``: one row per track;
- ``<clip>_track<ID>.png`` and ``<clip>_paths.png``: the plots;
- ``<clip>_report.html``: everything above on one page, images embedded (opens offline).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np

from meshstream.export.zarr_store import open_store
from meshstream.stream.errors import ConfigError, InputError, OutputError

from .motion import NothingToReport, TrackReport, analyse, check_store, read_tracks

FORMATS = ("html", "csv", "png")


def parse_formats(text: str) -> list[str]:
    """``"html,csv"`` -> ``["html", "csv"]``; an unknown format is one line."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"report format {','.join(unknown) or text!r} unknown; choose from {','.join(FORMATS)}")
    return formats


def parse_tracks(text: str | None) -> list[int] | None:
    """``"1,3"`` -> ``[1, 3]`` (``None``: every track)."""
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--tracks {text}: give track ids separated by commas, e.g. --tracks 1,3") from None


def analyse_store(store, path: str | Path, track_ids: list[int] | None = None) -> list[TrackReport]:
    """Every asked-for track of an open store, analysed.

    Raises:
        NothingToReport: The store has no tracks.
        InputError: Another schema, an unknown track, or a store that cannot be read.
    """
    ids = check_store(store, str(path))
    if track_ids is not None:
        missing = sorted(set(track_ids) - set(ids))
        if missing:
            raise InputError(f"{path}: no track {', '.join(map(str, missing))}; the store has tracks "
                             f"{', '.join(map(str, ids))}")
        ids = [t for t in ids if t in track_ids]
    try:
        reports = [analyse(m) for m in read_tracks(store, ids)]
    except (KeyError, ValueError, IndexError, OSError) as exc:
        raise InputError(f"{path}: the store cannot be read ({type(exc).__name__}: {exc}); if its run was "
                         "interrupted, finish it with --resume") from None
    if not reports:
        raise NothingToReport(f"{path}: no committed rows in tracks {', '.join(map(str, ids))}; nothing to report")
    return reports


def write_report(store_path: str | Path, out_dir: str | Path | None = None, track_ids: list[int] | None = None,
                 formats: list[str] = list(FORMATS)) -> list[Path]:
    """Writes the report files of a store.

    Args:
        store_path: A meshstream ``.zarr`` store (schema 1).
        out_dir: Output folder (default: beside the store).
        track_ids: Tracks to report (default: all).
        formats: From :data:`FORMATS`.

    Returns:
        The files written.
    """
    store_path = Path(store_path)
    store = open_store(store_path)
    reports = analyse_store(store, store_path, track_ids)
    out = Path(out_dir) if out_dir else store_path.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
        return _write(out, store_path.name.removesuffix(".zarr"), store, store_path, reports, formats)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the report there ({exc.strerror or exc}); choose another folder "
                          "with -o") from None


def _write(out: Path, stem: str, store, store_path: Path, reports: list[TrackReport], formats: list[str]) -> list[Path]:
    """Writes the asked-for files into ``out``; returns them."""
    written: list[Path] = []
    if "csv" in formats:
        for r in reports:
            written.append(write_track_csv(out / f"{stem}_track{r.summary.track_id}.csv", r))
        written.append(write_summary_csv(out / f"{stem}_summary.csv", reports))
    if "png" in formats or "html" in formats:
        from .html import figures, write_html

        figs = figures(reports)
        if "png" in formats:
            for name, png in figs.items():
                path = out / f"{stem}_{name}.png"
                path.write_bytes(png)
                written.append(path)
        if "html" in formats:
            written.append(write_html(out / f"{stem}_report.html", store, store_path, reports, figs))
    return written


def write_track_csv(path: Path, report: TrackReport) -> Path:
    """One row per frame the track was seen; floats to 4 decimals, empty where unknown."""
    cols = report.columns
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(cols))
        for i in range(len(cols["frame_index"])):
            w.writerow([_cell(v[i]) for v in cols.values()])
    return path


def summary_rows(reports: list[TrackReport]) -> list[dict[str, object]]:
    """The summaries as flat rows (range of motion as ``<angle>_min_deg`` / ``_max_deg``)."""
    rows = []
    for r in reports:
        row = {k: v for k, v in dataclasses.asdict(r.summary).items() if k != "range_of_motion_deg"}
        for name, (lo, hi) in r.summary.range_of_motion_deg.items():
            row[f"{name}_min_deg"], row[f"{name}_max_deg"] = lo, hi
        row["caveats"] = " | ".join(r.motion.caveats)
        rows.append(row)
    return rows


def write_summary_csv(path: Path, reports: list[TrackReport]) -> Path:
    rows = summary_rows(reports)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for row in rows:
            w.writerow({k: _cell(v) for k, v in row.items()})
    return path


def _cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "" if not math.isfinite(value) else f"{float(value):.4f}"
    if isinstance(value, np.integer):
        return int(value)
    return value
