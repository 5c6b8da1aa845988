"""medgen: batch workflows for deep generative models on medical imaging and expression data."""

from medgen.errors import MedgenInputError

__version__ = "0.1.0"
__all__ = ["MedgenInputError", "__version__"]
