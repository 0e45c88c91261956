"""``GET /api/images``: the sandbox images the engine has, from their labels."""

from __future__ import annotations

import pytest

from tests.conftest import DEFAULT_IMAGE
from tests.service.conftest import StartJudge
from tests.service.support import ALICE

pytestmark = pytest.mark.docker


async def test_lists_the_sandbox_images(start_judge: StartJudge) -> None:
    _, api = await start_judge()
    async with api.session.get(f"{api.url}/api/images") as resp:
        assert resp.status == 401
    async with api.session.get(
        f"{api.url}/api/images", headers={"Authorization": "Bearer nope"}
    ) as resp:
        assert resp.status == 401
    async with api.session.get(
        f"{api.url}/api/images", headers={"Authorization": f"Bearer {ALICE}"}
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    images = body["images"]
    names = [i["name"] for i in images]
    assert names == sorted(names)
    default = DEFAULT_IMAGE if ":" in DEFAULT_IMAGE else f"{DEFAULT_IMAGE}:latest"
    by_name = {i["name"]: i for i in images}
    assert default in by_name, names
    assert by_name[default]["default"] is True
    assert sum(i["default"] for i in images) == 1
    for image in images:
        assert image["tags"], image  # dangling images are left out
        assert image["id"].startswith("sha256:")
        assert isinstance(image["size"], int)
    # Images without the supervisor label (the rootfs, the server) are not sandbox images.
    assert not any(n.startswith(("judge/rootfs:", "judge/server:")) for n in names)
    # The language images say what they are (when built).
    for image in images:
        if image["name"] == "judge/cpp:latest":
            assert image["image"] == "cpp"
            assert image["toolchain"].startswith("debian:")
