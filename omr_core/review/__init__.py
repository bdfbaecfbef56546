"""Reviewing scores: staff detection, reconstruction of thin symbols, inference and evaluation."""
