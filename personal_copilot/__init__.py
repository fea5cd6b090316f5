"""personal-copilot: train, evaluate and serve your team's own code assistant on your own code."""

__version__ = "0.1.0"
