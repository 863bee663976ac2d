"""Cohort runs on Dask: a manifest of cases, one task per case on a LocalCluster or a cluster by address."""
