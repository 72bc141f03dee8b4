"""A ready file whose bytes vanished from storage: a clear 410, a log line, a check report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from app.storage import get_storage
from tests.support.client import Auth


def test_a_ready_file_whose_bytes_are_gone_answers_410_file_missing(
    app: Flask,
    auth: Auth,
    runner: Any,
    worker: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth.register()
    response = auth.upload("report.txt", b"quarterly figures\n")
    file_id = response.get_json()["file_id"]
    worker()
    with app.app_context():
        key = f"{auth.client.get('/api/org').get_json()['id']}/{file_id}/report.txt"
        assert get_storage().size(key) == len(b"quarterly figures\n")
        get_storage().remove(key)  # lost outside Coffer

    with caplog.at_level(logging.ERROR, logger="app.files.access"):
        download = auth.client.get(f"/api/files/{file_id}/download")
    assert download.status_code == 410
    assert download.mimetype == "application/json"
    body = download.get_json()
    assert body["code"] == "file_missing"
    assert "missing" in body["error"]
    assert any(file_id in record.getMessage() for record in caplog.records)
    # The file is still listed as it was: only its bytes are gone.
    assert auth.client.get(f"/api/files/{file_id}").get_json()["status"] == "ready"

    report = runner.invoke(args=["storage", "check"])
    assert report.exit_code == 1
    assert "rows whose bytes are missing" in report.output
    assert file_id in report.output

    # Deleting it (then from the trash) frees the quota and leaves storage consistent.
    assert auth.client.delete(f"/api/files/{file_id}", headers=auth.headers()).status_code == 204
    assert auth.client.delete(f"/api/trash/{file_id}", headers=auth.headers()).status_code == 204
    assert auth.client.get("/api/org").get_json()["used_bytes"] == 0
