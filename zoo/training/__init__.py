"""The one training loop (CLU + orbax + optax + grain) that every paper's tasks run on."""
