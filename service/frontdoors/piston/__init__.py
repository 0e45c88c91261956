"""The Piston door: Piston v2's API (REST and the interactive WebSocket) on the judge."""

from __future__ import annotations

from service.frontdoors.piston.frontdoor import PistonDoor

door = PistonDoor  # one per app: create_app calls it

__all__ = ["door"]
