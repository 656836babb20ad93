"""Disk sharing: local files, owned (encrypted) files, shares, transfers."""
