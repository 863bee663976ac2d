"""Dask clusters: the connection (local cluster or scheduler by address), TLS, which addresses need consent (the
loopback test), and the remote job (client side) with the function its worker runs."""
