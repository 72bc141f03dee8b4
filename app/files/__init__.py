"""The file, end to end: one module per use case, called alike by the API, the pages, the
CLI and the jobs (docs/ARCHITECTURE.md)."""
