"""Network blocks shared by model families, built for 2D or 3D data (``spatial_dims``), as
MONAI's blocks are: DCGAN generators/discriminators, residual up/down blocks, weight init.
Family folders compose them; nothing here trains or reads data."""
