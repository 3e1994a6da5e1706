"""`make bench`: the figures of issue 5, measured side by side with the peers (see README.md)."""
