"""The file domain: who may do what, and the rules files and uploads follow."""
