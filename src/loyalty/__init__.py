"""loyalty: a membership-growth engine for shops (tiers, growth, points, benefits)."""

__version__ = "0.1.0"
