"""PeerOS kernel: the operating-system mechanisms as pure, deterministic modules (no I/O)."""
