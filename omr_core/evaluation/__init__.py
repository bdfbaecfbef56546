"""A model measured on a dataset: validation, matching, failure cases, figures, crops, confidence, reports, benchmarks."""
