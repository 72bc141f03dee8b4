"""Domain modules: the business rules, each in one place."""
