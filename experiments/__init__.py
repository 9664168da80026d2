"""Experiment files: one file = one experiment, `get_config(arg)` -> ml_collections.ConfigDict."""
