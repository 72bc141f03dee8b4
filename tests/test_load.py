"""Load: sixteen clients of mixed traffic against one host with one worker. No 5xx, no
connection error, every upload final soon after, counters equal to what is stored.
`make bench` runs the same traffic for 60 s; this is the bounded version CI runs."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from flask import Flask

from tests.support.client import Auth, tokens_of_two_organizations
from tests.support.pipeline import assert_nothing_lost, process_env
from tests.support.processes import free_port, managed
from tests.support.traffic import call, mixed_traffic, served, unfinished
from tests.support.waiting import wait_for

CLIENTS = 16
STEPS = 12


@pytest.mark.slow
def test_sixteen_clients_of_mixed_traffic_on_one_host_and_one_worker(
    app: Flask, auth: Auth, tmp_path: Path
) -> None:
    tokens = tokens_of_two_organizations(auth)
    port = free_port()
    env = process_env(app, HOST="127.0.0.1", PORT=str(port))  # WEB_THREADS as shipped
    with contextlib.ExitStack() as stack:
        web = stack.enter_context(managed(["serve"], env, tmp_path / "web.log"))
        worker = stack.enter_context(managed(["worker"], env, tmp_path / "worker.log"))

        wait_for(lambda: served(port), 90, "the web server to answer")
        traffic = mixed_traffic(port, tokens, CLIENTS, steps=STEPS)

        assert not traffic.server_errors(), traffic.server_errors()[:5]
        assert len(traffic.answers) == CLIENTS * STEPS
        uploads = [a for a in traffic.answers if a.kind == "upload"]
        assert uploads and all(a.status == 201 for a in uploads), uploads[:3]
        expected = {"list": {200}, "details": {200}, "download": {200, 409}, "delete": {204}}
        for kind, statuses in expected.items():
            answered = [a.status for a in traffic.answers if a.kind == kind]
            # A download may come before validation: 409 not_ready, as the contract says.
            assert answered and set(answered) <= statuses, (kind, answered[:5])

        wait_for(lambda: unfinished(port, tokens) == 0, 60, "every upload to reach its verdict")
        for file_id, (token, data) in traffic.kept.items():
            status, body = call(port, "GET", f"/api/files/{file_id}/download", token)
            assert (status, body) == (200, data), file_id
        for file_id in traffic.deleted:
            assert call(port, "GET", f"/api/files/{file_id}", tokens[0])[0] == 404
        assert web.popen.poll() is None and worker.popen.poll() is None
    assert_nothing_lost(app)
