"""Cluster-plane and user-plane networking: servers, clients, error mapping."""
