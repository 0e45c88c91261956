"""The service tests' fixtures (a real receiver, the judge on a real port), shared here."""

from tests.service.conftest import receiver, session, settings, start_judge

__all__ = ["receiver", "session", "settings", "start_judge"]
