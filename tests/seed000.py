"""The reference hello world as data (the classic first mission and the callback it gets),
shared by the unit, mission and service tests."""

from __future__ import annotations

from typing import Any


def hello_mission(url: str) -> dict[str, Any]:
    """The reference hello-world mission, calling back ``url``."""
    return {
        "return": {"url": url},
        "prepare": {"execute": [{"command": ["echo", "hello world"], "stdout": "output.txt"}]},
    }


def seed_echo(url: str) -> dict[str, Any]:
    """The ``mission`` field of the reference hello world's callback, calling back ``url``."""
    return {
        "final": {"execute": [], "file": {}},
        "prepare": {
            "execute": [
                {
                    "command": ["echo", "hello world"],
                    "memory_limit": 65536,
                    "meta": "meta",
                    "name": "",
                    "output_limit": 262144,
                    "record": {"enable": True, "stderr": 1024, "stdout": 1024},
                    "scope": {"enable": False, "export": [], "import": []},
                    "stderr": "",
                    "stdin": "",
                    "stdout": "output.txt",
                    "time_limit": 60000,
                }
            ],
            "file": {},
        },
        "return": {"payload": {}, "url": url},
        "tasks": {"execute": [], "task": []},
        "tick": False,
    }
