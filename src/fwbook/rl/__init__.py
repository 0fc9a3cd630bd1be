"""Catch and the recurrent actor-critic agents (Section 4.4), on core's models and records. Draws nothing."""
