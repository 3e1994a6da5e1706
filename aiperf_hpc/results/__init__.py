"""Results: records -> columns -> metrics -> exports (JSON, CSV, slices, sweeps), and recompute."""
