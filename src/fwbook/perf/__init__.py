"""Benchmarks and fast training paths, each tested equal to the plain step. Draws nothing."""
