"""File sharing and search: shared folders, the tracker index, verified multi-source downloads."""
