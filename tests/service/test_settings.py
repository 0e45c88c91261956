"""Settings from the environment and their checks (no server, no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError


def test_defaults_are_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in Settings.variables():
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert (s.host, s.port, s.tokens) == ("127.0.0.1", 8000, ())
    assert s.runtimes == ("runc",)
    assert s.db_path == Path("data/judge.sqlite3")
    assert s.engine_threads >= 2 * s.max_running


def test_every_documented_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in {
        "JUDGE_HOST": "0.0.0.0",
        "JUDGE_PORT": "9000",
        "JUDGE_TOKENS": " a, b ,,c ",
        "JUDGE_RUNTIMES": "runc, runsc",
        "JUDGE_DATA_DIR": "/var/lib/judge",
        "JUDGE_DEFAULT_IMAGE": "judge/base",
        "JUDGE_MAX_RUNNING": "8",
        "JUDGE_MAX_QUEUED": "0",
        "JUDGE_CALLBACK_SECRET": "s3",
        "JUDGE_BLOCK_PRIVATE_URLS": "yes",
        "JUDGE_SANDBOX_OWNER": "ci",
        "JUDGE_CALLBACK_INITIAL_WAIT_S": "0.25",
        "UNRELATED": "x",
    }.items():
        monkeypatch.setenv(var, value)
    s = Settings.from_env()
    assert s.host == "0.0.0.0"
    assert s.port == 9000
    assert s.tokens == ("a", "b", "c")
    assert s.runtimes == ("runc", "runsc")
    assert s.data_dir == Path("/var/lib/judge")
    assert s.default_image == "judge/base"
    assert (s.max_running, s.max_queued) == (8, 0)
    assert s.callback_secret == "s3"
    assert s.block_private_urls is True
    assert s.sandbox_owner == "ci"
    assert s.callback_initial_wait_s == 0.25


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("JUDGE_PORT", "http", "valid integer"),
        ("JUDGE_PORT", "70000", "less than or equal to 65535"),
        ("JUDGE_MAX_RUNNING", "0", "greater than or equal to 1"),
        ("JUDGE_MAX_QUEUED", "-1", "greater than or equal to 0"),
        ("JUDGE_BLOCK_PRIVATE_URLS", "maybe", "valid boolean"),
        ("JUDGE_CALLBACK_MAX_WAIT_S", "nan", "finite"),
        ("JUDGE_SANDBOX_PIDS", "8", "greater than or equal to 16"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=var) as info:
        Settings.from_env()
    assert message in str(info.value)


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(SettingsError, match="max_running"):
        Settings(max_running=0)
    with pytest.raises(SettingsError, match="sandbox_owner"):
        Settings(sandbox_owner="")


def test_sandbox_sizes_are_settable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_SANDBOX_BOX_KIB", "2048")
    monkeypatch.setenv("JUDGE_SANDBOX_TMP_KIB", "4096")
    monkeypatch.setenv("JUDGE_SANDBOX_PIDS", "64")
    s = Settings.from_env()
    assert (s.sandbox_box_kib, s.sandbox_tmp_kib, s.sandbox_pids) == (2048, 4096, 64)


def test_variables_lists_every_field() -> None:
    assert "JUDGE_SANDBOX_PIDS" in Settings.variables()
    assert len(Settings.variables()) == len(Settings.model_fields)


def test_pool_defaults_to_the_default_image() -> None:
    assert Settings(default_image="x/y").pool_sizes == {"x/y": 2}
    assert Settings(pool="").pool_sizes == {"judge/default": 2}
    assert Settings(pool="none").pool_sizes == {}
    assert Settings(pool="a=1,b=0").pool_sizes == {"a": 1, "b": 0}
    with pytest.raises(SettingsError, match="JUDGE_POOL"):
        Settings(pool="a=lots")


def test_the_private_url_allowlist_is_split_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_ALLOW_PRIVATE", "10.1.2.0/24, files.internal,*.corp.example")
    s = Settings.from_env()
    assert s.allow_private == ("10.1.2.0/24", "files.internal", "*.corp.example")
    assert s.address_policy.host_listed("a.corp.example")
    monkeypatch.setenv("JUDGE_ALLOW_PRIVATE", "10.1.2.0/24,not a host")
    with pytest.raises(SettingsError, match="JUDGE_ALLOW_PRIVATE"):
        Settings.from_env()


def test_a_whsec_secret_must_be_base64(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_CALLBACK_SECRET", "whsec_%%%")
    with pytest.raises(SettingsError, match="JUDGE_CALLBACK_SECRET"):
        Settings.from_env()


def test_sharing_a_port_needs_a_shared_database() -> None:
    with pytest.raises(SettingsError, match="JUDGE_REUSE_PORT needs JUDGE_DATABASE_URL"):
        Settings(reuse_port=True)
    assert Settings(reuse_port=True, database_url="postgresql://db/judge").reuse_port


def test_the_webgme_doors_quota_keeps_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage quota is the WebGME door's own setting now, read from the same variable,
    with the same default and the same refusal (``python -m service`` exits saying which)."""
    from service import __main__ as server
    from service.frontdoors.webgme.settings import WebgmeSettings

    monkeypatch.delenv("JUDGE_STORAGE_QUOTA_BYTES", raising=False)
    assert WebgmeSettings().storage_quota_bytes == 1 << 30
    monkeypatch.setenv("JUDGE_STORAGE_QUOTA_BYTES", "4096")
    assert WebgmeSettings().storage_quota_bytes == 4096
    monkeypatch.setenv("JUDGE_STORAGE_QUOTA_BYTES", "5")
    with pytest.raises(SettingsError, match="JUDGE_STORAGE_QUOTA_BYTES"):
        WebgmeSettings()
    with pytest.raises(SystemExit, match=r"^judge: JUDGE_STORAGE_QUOTA_BYTES \(storage_quota"):
        server.main()
