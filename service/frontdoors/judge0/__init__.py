"""The Judge0 CE 1.13.1 door at ``/judge0``: Judge0's clients, its SDK included, unchanged."""

from service.frontdoors.judge0.door import door

__all__ = ["door"]
