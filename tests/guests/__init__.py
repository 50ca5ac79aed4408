"""Test guests: hand-written WAT components (see ``wat/``)."""
