"""Admission alone (``service.pipeline.intake``): no queue, no database, no Docker."""

from __future__ import annotations

import pytest

from service.pipeline.intake import Admission, QueueFull, ShuttingDown


def test_closed_until_opened_and_after_closing() -> None:
    admission = Admission(max_queued=5, max_running=2)
    with pytest.raises(ShuttingDown):
        admission.check_open()
    admission.open()
    with admission.admit(0):
        pass
    admission.close()
    with pytest.raises(ShuttingDown), admission.admit(0):
        pass
    assert admission.reserved == 0


def test_full_queue_refused_with_retry_after_of_queue_over_running_slots() -> None:
    admission = Admission(max_queued=10, max_running=3)
    admission.open()
    with admission.admit(9):
        assert admission.reserved == 1
    with pytest.raises(QueueFull) as refused, admission.admit(10):
        pass
    assert refused.value.retry_after_s == 4  # ceil(10 / 3)
    assert admission.reserved == 0


def test_retry_after_is_at_least_one_second() -> None:
    admission = Admission(max_queued=0, max_running=8)
    admission.open()
    with pytest.raises(QueueFull) as refused, admission.admit(0):
        pass
    assert refused.value.retry_after_s == 1


def test_submissions_being_stored_count_against_the_bound() -> None:
    admission = Admission(max_queued=2, max_running=1)
    admission.open()
    with admission.admit(0), admission.admit(0):
        assert admission.reserved == 2
        with pytest.raises(QueueFull), admission.admit(0):
            pass
    assert admission.reserved == 0
    with admission.admit(1):  # places are given back when storing ends
        pass


def test_a_place_is_given_back_when_storing_fails() -> None:
    admission = Admission(max_queued=1, max_running=1)
    admission.open()
    with pytest.raises(RuntimeError), admission.admit(0):
        raise RuntimeError("store failed")
    assert admission.reserved == 0
