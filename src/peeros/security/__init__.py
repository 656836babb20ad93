"""Identity (keys, peer ids, signatures) and the cluster PKI."""
