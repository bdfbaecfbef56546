"""Class audit: per-class statistics, exclusion plans by name, the assigner memory forecast, data.yaml checks, convert to YOLO."""
