"""Reports of comparisons over many cases: the table (CSV, Parquet, per-structure summary), the plots and the HTML
report, written from case records; the cohort and the training evaluation write theirs with it."""
