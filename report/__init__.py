"""Motion analysis of a store: per-track CSV, summary and an offline HTML report (``meshstream report``)."""
