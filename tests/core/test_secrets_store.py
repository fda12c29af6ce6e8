"""Planted secrets never reach the Parquet files of a real store (issue 10's probe, condensed)."""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import types
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import span_tree

SECRETS = [f"planted-{index:02d}-Zq8" for index in range(24)]


@dataclasses.dataclass
class Settings:
    """An app's settings object, logged as an attribute."""

    host: str
    db_password: str


def test_no_planted_secret_reaches_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """24 secrets in keys, objects, pairs, deep values, messages, URLs and errors: none stored."""
    caplog.set_level(logging.INFO)
    store = tmp_path / "store"
    span_tree.configure(store=str(store), console=False, jsonl=False)
    s = SECRETS
    log = logging.getLogger("secrets_tests.app")
    log.disabled = False  # an earlier test's dictConfig may have disabled existing loggers
    with pytest.raises(RuntimeError), span_tree.span(f"GET /items?token={s[0]}") as root:
        root.set_attributes(
            password=s[1],
            auth=s[2],
            pwd=s[3],
            passphrase=s[4],
            private_key=s[5],
            bearer=s[6],
            credentials=s[7],
            session=s[8],
            settings=Settings("db", s[9]),
            namespace=types.SimpleNamespace(api_key=s[10]),
            headers=[("Authorization", f"Bearer {s[11]}"), ("Accept", "*/*")],
            deep={"a": {"b": {"c": {"d": {"e": {"secret": s[12]}}}}}},
            url=f"https://user:{s[13]}@example.com/x",
        )
        span_tree.set_tags(session_token=s[14])
        log.info("connecting to postgres://app:%s@db/main", s[15])
        log.info("calling with Authorization: Bearer %s", s[16])
        log.info("dsn host=db password=%s", s[17])
        log.info("login", extra={"client_secret": s[18]})
        try:
            raise ValueError(f"bad key=value pair: api_key={s[19]}")
        except ValueError:
            log.exception("handled")
        with span_tree.span("child", cookie=s[20], items=[{"token": s[21]}]):
            log.warning("fetch https://x.example/?key=%s&sig=%s", s[22], s[23])
        raise RuntimeError("failed with password=" + s[1])
    assert span_tree.flush(10)
    files = glob.glob(f"{store}/spans/**/*.parquet", recursive=True)
    rows = [row for path in files for row in pq.read_table(path).to_pylist()]
    stored = json.dumps(rows, default=str)
    assert 2 == len(rows)
    assert [] == [secret for secret in SECRETS if secret in stored]
