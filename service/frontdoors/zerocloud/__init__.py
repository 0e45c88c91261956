"""The ZeroCloud-style door: ``POST /v1/{account}`` runs a script or a ZeroVM image."""
