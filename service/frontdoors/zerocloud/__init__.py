"""The ZeroCloud-style door: ``POST /v1/{account}`` runs a script or a ZeroVM image."""

from __future__ import annotations

from service.frontdoors.zerocloud.frontdoor import ZerocloudDoor

door = ZerocloudDoor  # one per app: create_app calls it

__all__ = ["door"]
