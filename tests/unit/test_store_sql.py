"""The shared statements' renderer: one text with named parameters, two engines' placeholders."""

from __future__ import annotations

import pytest

from service.frontdoors.webgme import tables
from service.store import sql
from service.store.sql import PG_CLOCK, Statement


def test_a_name_used_twice_is_two_question_marks_but_one_dollar_parameter() -> None:
    s = Statement("UPDATE t SET a = :a WHERE (CAST(:o AS TEXT) IS NULL OR o = :o) AND id = :id")
    assert s.bind_sqlite(id=3, o="x", a=1) == (
        "UPDATE t SET a = ? WHERE (CAST(? AS TEXT) IS NULL OR o = ?) AND id = ?",
        (1, "x", "x", 3),
    )
    assert s.bind_pg(id=3, o="x", a=1) == (
        "UPDATE t SET a = $1 WHERE (CAST($2 AS TEXT) IS NULL OR o = $2) AND id = $3",
        1,
        "x",
        3,
    )


def test_the_lease_clock_is_the_database_s_on_postgresql_and_now_on_sqlite() -> None:
    s = Statement("UPDATE t SET until = :clock + :lease_s, at = :now")
    assert s.bind_sqlite(lease_s=5, now=100.0) == (
        "UPDATE t SET until = ? + ?, at = ?",
        (100.0, 5, 100.0),
    )
    assert s.bind_pg(lease_s=5, now=100.0) == (
        f"UPDATE t SET until = {PG_CLOCK} + $1, at = $2",
        5,
        100.0,
    )


def test_casts_and_extra_values_are_left_alone_and_a_missing_value_is_an_error() -> None:
    s = Statement("SELECT x::text FROM t WHERE a = :a")
    assert s.bind_pg(a=1, unused=2) == ("SELECT x::text FROM t WHERE a = $1", 1)
    with pytest.raises(KeyError):
        s.bind_sqlite()


def test_returning_appends_to_the_same_statement() -> None:
    s = Statement("DELETE FROM t WHERE id = :id").returning("id")
    assert s.bind_pg(id=1) == ("DELETE FROM t WHERE id = $1 RETURNING id", 1)


def test_every_shared_statement_renders_without_leftover_names() -> None:
    # The store's, and the WebGME door's (its tables moved out of the store).
    modules = (sql, tables)
    statements = [v for m in modules for v in vars(m).values() if isinstance(v, Statement)]
    assert len(statements) > 30
    for s in statements:
        assert ":" not in s.sqlite_text.replace("::", ""), s
        assert ":" not in s.pg_text.replace("::", ""), s


def test_a_job_update_sets_only_known_columns() -> None:
    statement, values = tables.update_job({"status": "RUNNING", "result_hashes": {"a": "b"}})
    assert values == {"status": "RUNNING", "result_hashes": '{"a": "b"}'}
    assert statement.bind_sqlite(**values, token_hash="t", job_hash="j")[1] == (
        "RUNNING",
        '{"a": "b"}',
        "t",
        "j",
    )
    with pytest.raises(AssertionError):
        tables.update_job({"token_hash": "other"})
