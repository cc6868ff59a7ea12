"""The runtime side of the patterns: validation checkpoints, handoff packages, join steps."""
