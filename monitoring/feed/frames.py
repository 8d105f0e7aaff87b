from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Frame:
    """A published topic frame: ``text`` is exactly what every client receives."""

    topic: str
    seq: int
    epoch: str
    text: str


# ``since`` answers with one of these instead of frames when history cannot fill the gap.
EPOCH_CHANGED = "epoch_changed"
HISTORY_TRIMMED = "history_trimmed"
FUTURE_SEQ = "future_seq"
