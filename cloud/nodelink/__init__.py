"""The cloud end of NodeLink: one bidirectional stream per node (docs/nodelink.md)."""
