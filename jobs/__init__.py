"""Background validation of uploads on RQ."""
