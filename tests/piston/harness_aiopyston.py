"""Drives a judge server with PyPI's aiopyston 1.2.1, unchanged, the way a Discord bot does:

    python harness_aiopyston.py <base url ending in /api/v2/piston/> <token> <wrong token>

Runs each scenario and prints one JSON line of what the client returned; the test
(test_clients.py) asserts on it. Run as a process of its own: the client is written for an older
aiohttp (it warns about its own arguments and closes its session from ``__del__``), which the
test suite's warnings-as-errors would refuse inside the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from pyston import File, PystonClient
from pyston.exceptions import ExecutionError, UnexpectedError


async def main(base_url: str, token: str, wrong: str) -> dict[str, Any]:
    client = PystonClient(api_key=token, base_url=base_url)
    report: dict[str, Any] = {}
    try:
        runtimes = await client.runtimes()
        report["runtimes"] = [[r.language, r.version, r.aliases, r.runtime] for r in runtimes]
        report["languages"] = sorted(await client.languages())
        report["py_runtimes"] = [str(r) for r in await client.get_runtimes("py")]
        out = await client.execute("python", [File("print(input()[::-1])")], stdin="olleh")
        report["hello"] = {"str": str(out), "success": out.success, "raw": out.raw_json}
        out = await client.execute(
            "python",
            [File("import sys; print(sys.argv[1:])", filename="bot.py")],
            version="3.10.0",
            args=["a", "b"],
        )
        report["pinned"] = out.raw_json
        source = "#include <iostream>\nint main(){std::cout << 6 * 7 << std::endl;}"
        out = await client.execute("c++", [File(source, filename="main.cpp")])
        report["cpp"] = {"str": str(out), "compile": out.compile_stage.code, "raw": out.raw_json}
        try:
            await client.execute("cobol", [File("x")])
        except ExecutionError as e:
            report["unknown"] = str(e)
    finally:
        await client.close_session()
    stranger = PystonClient(api_key=wrong, base_url=base_url)
    try:
        await stranger.execute("python", [File("print(1)")])
    except UnexpectedError as e:
        report["wrong_token"] = str(e)
    finally:
        await stranger.close_session()
    return report


if __name__ == "__main__":
    url, token, wrong = sys.argv[1:4]
    print(json.dumps(asyncio.run(main(url, token, wrong))))
