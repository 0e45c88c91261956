"""The WebGME-style door: a content-addressed blob store and an executor API (``/rest/...``)."""

from __future__ import annotations

from service.frontdoors.webgme.frontdoor import WebgmeDoor

door = WebgmeDoor  # one per app: create_app calls it

__all__ = ["door"]
