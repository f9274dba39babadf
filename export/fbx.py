"""FBX export through Blender (``bpy``) in its own Python environment.

``bpy`` 4.5 needs NumPy < 2 and meshstream uses NumPy 2, so they cannot share an
environment (and there is no ``meshstream[fbx]`` extra). The FBX is made from the
track's GLB by Blender's own glTF importer and FBX exporter, in a subprocess running
the Python named by ``MESHSTREAM_BLENDER_PYTHON``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from meshstream.stream.errors import MissingExtraError, OutputError

BLENDER_ENV = "MESHSTREAM_BLENDER_PYTHON"
SETUP_HINT = (
    "FBX export needs Blender's Python module in its own environment (bpy needs numpy<2): "
    "python3.11 -m venv ~/.meshstream-blender && ~/.meshstream-blender/bin/pip install 'numpy==1.26.4' 'bpy==4.5.*' "
    f"&& export {BLENDER_ENV}=~/.meshstream-blender/bin/python"
)


def blender_python() -> str:
    """Path of the Python that has ``bpy``, checked to import it.

    Raises:
        MissingExtraError: Not configured or not working, with the commands that fix it.
    """
    path = os.environ.get(BLENDER_ENV, "")
    if not path:
        raise MissingExtraError(SETUP_HINT)
    exe = shutil.which(os.path.expanduser(path))
    if exe is None:
        raise MissingExtraError(f"{BLENDER_ENV}={path} is not an executable; {SETUP_HINT}")
    check = subprocess.run([exe, "-c", "import bpy"], capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise MissingExtraError(f"{exe} cannot import bpy ({last}); {SETUP_HINT}")
    return exe


def write_fbx(glb_path: str | Path, fbx_path: str | Path, fps: float, python: str) -> Path:
    """Converts a meshstream GLB (skinned mesh + animation) to FBX with Blender.

    Args:
        glb_path: Input ``.glb`` (from ``export.gltf.write_glb``).
        fbx_path: Output ``.fbx``.
        fps: The clip's frame rate (keyframes land on whole frames).
        python: Blender's Python (see :func:`blender_python`).
    """
    script = Path(__file__).with_name("blender_fbx.py")
    res = subprocess.run([python, str(script), "--", str(glb_path), str(fbx_path), repr(float(fps))],
                         capture_output=True, text=True, timeout=600)
    if res.returncode != 0 or not Path(fbx_path).is_file():
        last = (res.stderr.strip().splitlines() or res.stdout.strip().splitlines() or ["no output"])[-1]
        raise OutputError(f"Blender could not write {fbx_path} ({last})")
    return Path(fbx_path)
