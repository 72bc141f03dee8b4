"""Coffer's benchmark: `python -m bench` (or `make bench`) prints one table of figures.

It starts Coffer as `make run` does (supervisord with deploy/supervisord.conf) against a
private Redis and a database of its own, drives it over HTTP on 127.0.0.1 only, and sets
the figures beside a floor (`bench.floor`) served by waitress under the same settings.
"""
