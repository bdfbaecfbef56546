"""Dataset readers and writers: DeepScoresV2 JSON, YOLO folders, and the offline engraver."""
