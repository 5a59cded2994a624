"""Analysis of snapshots: trends, alert states, health and advice. Reads, never writes, sources."""
