"""What gets trained, by name: grids, profiles, sweeps and the seed statistics. Imports only core; no plotting."""
