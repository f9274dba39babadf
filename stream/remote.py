"""Outputs at a URL (``s3://bucket/run``, ``gs://...``, ``file:///shared/run``): a batch's
clips write into a local staging folder on the node that runs them, exactly as to a
local folder, and :class:`Mirror` copies what changed to the URL through fsspec after
every committed window and at the end (the overlay, the exports, ``batch.json``).

The store's data files go up before its metadata (``zarr.json``, where ``n_frames``
says how far it is whole), so the URL always holds a store that ``--resume`` can
continue, on any node: :meth:`Mirror.fetch` brings it back into a fresh staging folder
first.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import OutputError


def is_url(target: str) -> bool:
    """True for ``scheme://...`` (anything fsspec may open), false for a local path."""
    return "://" in str(target)


class Mirror:
    """Keeps ``url`` a copy of the local folder ``staging`` (files only ever added or
    overwritten; a file's change is seen by its size and modification time).

    Args:
        staging: The local folder the run writes.
        url: The folder it is mirrored to.
    """

    def __init__(self, staging: Path, url: str) -> None:
        self.staging = Path(staging)
        self.url = url.rstrip("/")
        try:
            import fsspec

            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise OutputError(f"-o {url}: cannot write there ({exc}); install the fsspec backend of its scheme "
                              "(e.g. s3fs for s3://) or give a folder") from exc
        self._sent: dict[str, tuple[int, int]] = {}

    def check_writable(self) -> None:
        """Writes and removes a probe file at the URL, before any work."""
        probe = f"{self.root}/.meshstream-write-test-{os.getpid()}"
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            self.fs.pipe_file(probe, b"")
            self.fs.rm_file(probe)
        except (OSError, PermissionError) as exc:
            raise OutputError(f"-o {self.url}: not writable ({exc}); choose another with -o") from exc

    def fetch(self, name: str) -> bool:
        """Copies ``name`` (a file or folder) from the URL into staging, if it is there."""
        remote = f"{self.root}/{name}"
        if not self.fs.exists(remote):
            return False
        local = self.staging / name
        if self.fs.isdir(remote):
            local.mkdir(parents=True, exist_ok=True)
            self.fs.get(remote + "/", str(local), recursive=True)
        else:
            self.fs.get(remote, str(local))
        for path in (local.rglob("*") if local.is_dir() else [local]):
            if path.is_file():  # fetched files are not sent back unchanged
                st = path.stat()
                self._sent[path.relative_to(self.staging).as_posix()] = (st.st_size, st.st_mtime_ns)
        return True

    def sync(self, name: str | None = None) -> int:
        """Sends what changed under ``name`` (default: everything), metadata last;
        returns the number of files sent."""
        base = self.staging / name if name else self.staging
        files = [p for p in (base.rglob("*") if base.is_dir() else [base]) if p.is_file()]
        changed = []
        for path in files:
            rel = path.relative_to(self.staging).as_posix()
            st = path.stat()
            if self._sent.get(rel) != (st.st_size, st.st_mtime_ns):
                changed.append((path.name == "zarr.json", rel, (st.st_size, st.st_mtime_ns)))
        for _, rel, stamp in sorted(changed):  # data files first, then each group's zarr.json
            remote = f"{self.root}/{rel}"
            self.fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(self.staging / rel), remote)
            self._sent[rel] = stamp
        return len(changed)
