"""The Piston door: Piston v2's API (REST and the interactive WebSocket) on the judge."""

from service.frontdoors.piston.frontdoor import door

__all__ = ["door"]
