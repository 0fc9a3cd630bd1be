"""fwbook: the reproducible companion to Ba et al. (2016), *Using Fast Weights to Attend to the Recent Past*."""

__version__ = "0.1.0"
