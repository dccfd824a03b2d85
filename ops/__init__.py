"""Operator tooling around the blumeops program: ``python -m ops plan|diff|phases|images``."""
