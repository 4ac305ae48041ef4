"""Test helpers that start real servers on ephemeral ports and stop them afterwards."""
