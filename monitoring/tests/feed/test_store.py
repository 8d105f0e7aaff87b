"""A history lookup's answer: frames that continue a seq without a hole, or the reason there are none."""

import pytest

from monitoring.feed.frames import Frame
from monitoring.feed.store import EPOCH_CHANGED, HISTORY_TRIMMED, History


def _frames(*seqs: int) -> tuple[Frame, ...]:
    return tuple(Frame("status", seq, "e1", f'{{"seq":{seq}}}') for seq in seqs)


def test_frames_starting_right_after_the_seq_fill_it():
    assert History(frames=_frames(4, 5)).fills(3)


@pytest.mark.parametrize("seq", [2, 4, 5])
def test_frames_that_start_later_or_earlier_do_not_fill_it(seq):
    assert not History(frames=_frames(4, 5)).fills(seq)


def test_no_frames_fill_nothing():
    assert not History().fills(3)


@pytest.mark.parametrize("reason", [EPOCH_CHANGED, HISTORY_TRIMMED])
def test_a_gap_is_a_history_without_frames_that_fills_nothing(reason):
    missing = History.missing(reason)
    assert (missing.frames, missing.gap) == ((), reason)
    assert not missing.fills(0)
    assert not History(frames=_frames(1), gap=reason).fills(0)
