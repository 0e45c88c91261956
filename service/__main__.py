"""``python -m service``: start the judge server with settings from the environment."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from service.app import create_app
from service.settings import Settings, SettingsError


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        sys.exit(f"judge: {e}")
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_grace_s,
        print=lambda msg: logging.getLogger("service").info(msg.strip()),
    )


if __name__ == "__main__":
    main()
