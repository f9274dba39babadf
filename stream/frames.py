"""Frame containers: pixels that carry their own time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    """What a source knows about itself before decoding.

    Attributes:
        path: Where the frames come from (file, folder or device).
        width: Frame width in pixels after rotation metadata is applied.
        height: Frame height in pixels after rotation metadata is applied.
        fps: Average frame rate (frames/s) read from the container; for an image
            folder, the rate the user gave. Used only to label outputs: timing always
            comes from each frame's ``pts_seconds``.
        n_frames: Frame count the container announces, or ``None`` if unknown.
        rotation_deg: Display rotation applied to decoded frames, degrees
            counter-clockwise as FFmpeg reads the container's display matrix (0, 90,
            180 or 270; a phone's "rotate 90" clip reads 270).
        codec: Codec name, or ``"images"`` for an image folder.
        focal_35mm: The lens as a 35 mm-equivalent focal length, millimetres, when the
            camera wrote one into the container (iPhones do) or into the images' EXIF;
            ``None`` otherwise.
        focal_35mm_basis: How that value maps to the frame
            (:func:`~meshstream.stream.container_tags.focal_px_from_35mm`):
            ``"long_side"`` for video, ``"diagonal"`` for photos' EXIF.
    """

    path: str
    width: int
    height: int
    fps: float
    n_frames: int | None
    rotation_deg: int = 0
    codec: str = ""
    focal_35mm: float | None = None
    focal_35mm_basis: str = "long_side"

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {self.width}x{self.height}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


@dataclass
class Frame:
    """One decoded video frame.

    Attributes:
        index: 0-based index of the frame in the source (before any ``every`` step).
        pts_seconds: Presentation time in seconds from the container's clock.
        rgb: (H, W, 3) uint8 RGB pixels, rotation metadata already applied.
    """

    index: int
    pts_seconds: float
    rgb: np.ndarray

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(
                f"Frame.rgb must be (H, W, 3) uint8, got {self.rgb.shape} {self.rgb.dtype}"
            )

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])
