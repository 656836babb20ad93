"""The peer node: lifecycle, membership, cluster routes and the local API."""
