"""The WebGME-style door: a content-addressed blob store and an executor API (``/rest/...``)."""
