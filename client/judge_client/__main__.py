"""``python -m judge_client``: the ``judge`` command."""

from __future__ import annotations

import sys

from judge_client.cli import main

sys.exit(main())
