"""Seed ranges of the rendered scenes, split three ways (development, validation, test).

Synthetic scenes come from seeds (``random_scene``, ``elevated_scene``, ``close_scene``
and ``wide_scene`` of ``models.synthetic_scenes``). A number worth reporting comes from
scenes nobody tuned on:

- ``dev``: look at freely, debug, design. The ranges earlier work already looked at
  (random scenes from 900100, tilted from 950000) are development, and so is the
  hand-made suite of ``bench/accuracy.py`` (its clips were used to design the cues).
- ``val``: choose thresholds and hyperparameters here, not on ``dev`` alone.
- ``test``: run only to report; a change is not tuned until its test numbers are the
  ones it is judged by. A gain that shows on ``dev`` but not here is not a gain.

The landmark lifters are trained on ``TRAIN`` and ``TRAIN_CLOSE``
(``train/train_lifter.py``), disjoint from all three.
"""

from __future__ import annotations

TRAIN = range(100_000, 200_000)
TRAIN_CLOSE = range(200_000, 300_000)  # close-range scenes for the lifters (train_lifter.py render --scenes close)

SPLITS: dict[str, dict[str, range]] = {
    "random": {"dev": range(900_100, 901_000), "val": range(910_000, 911_000), "test": range(920_000, 921_000)},
    "tilted": {"dev": range(950_000, 951_000), "val": range(960_000, 961_000), "test": range(970_000, 971_000)},
    # models.synthetic_scenes.close_scene: people at 0.7-1.5 m, or seen from behind at 2-4 m.
    "close": {"dev": range(930_000, 931_000), "val": range(940_000, 941_000), "test": range(945_000, 946_000)},
    # models.synthetic_scenes.wide_scene (bench/sports.py): 10-20 players 30-150 px tall on a pitch.
    "wide": {"dev": range(995_000, 996_000), "val": range(996_000, 997_000), "test": range(997_000, 998_000)},
    # bench/report.py: one person walking, jumping or squatting (seed % 3).
    "motion": {"dev": range(980_000, 981_000), "val": range(985_000, 986_000), "test": range(990_000, 991_000)},
}


def seeds(kind: str, split: str, n: int) -> list[int]:
    """The first ``n`` seeds of ``kind`` (``random``, ``tilted``, ``close``, ``wide`` or ``motion``) in ``split``."""
    pool = SPLITS[kind][split]
    if n > len(pool):
        raise ValueError(f"the {split} split of {kind} scenes holds {len(pool)} seeds, not {n}")
    return list(pool[:n])
