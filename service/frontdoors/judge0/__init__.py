"""The Judge0 CE 1.13.1 door at ``/judge0``: Judge0's clients, its SDK included, unchanged."""

from service.frontdoors.judge0.door import JUDGE0_DOOR, Judge0Door

door = Judge0Door
"""What ``service.app`` makes one door per app with."""

__all__ = ["JUDGE0_DOOR", "Judge0Door", "door"]
