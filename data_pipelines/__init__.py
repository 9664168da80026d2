"""Data: tfds builders that generate their data locally (no network) and grain input pipelines."""
