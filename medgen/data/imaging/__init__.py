"""Imaging data: sample sheets, readers, MONAI preprocessing, slices and patches."""
