"""Memory sharing: the key-value store and its Redis-protocol front."""
