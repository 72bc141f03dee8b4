"""Reading /metrics: its Prometheus text parsed into samples, over a test client or HTTP."""

from __future__ import annotations

import urllib.request
from typing import Any

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

# (sample name, its labels) -> value
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """The samples of a Prometheus text exposition."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series is not there (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def names(samples: Samples) -> set[str]:
    """The sample names of a scrape."""
    return {name for name, _ in samples}


def scrape_url(base_url: str) -> Samples:
    """GET <base_url>/metrics over real HTTP (from 127.0.0.1, allowed by default)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=30) as response:
        assert response.status == 200
        return parse(response.read().decode())


def scrape(client: FlaskClient, **kwargs: Any) -> Samples:
    """GET /metrics through a test client, parsed."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/plain"
    return parse(response.get_data(as_text=True))
