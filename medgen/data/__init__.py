"""Data readers, preprocessing and splits (expression and imaging)."""
