"""HTTP blueprints: thin views that parse input, call a domain module, return JSON."""
