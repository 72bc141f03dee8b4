"""The file: its bytes, how they arrive and where they go, over the storage primitives."""
