"""The tracker: registry, placement and the durable cluster registries."""
