"""The service tests' fixtures (the judge on a real port, a client session), shared here; the
callback receiver comes from the top-level conftest."""

from tests.service.conftest import session, settings, start_judge

__all__ = ["session", "settings", "start_judge"]
