"""The live feed's shared state: per-topic sequence numbers, epochs and bounded history."""
