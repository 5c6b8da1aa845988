"""Names shared by anomaly scoring, its evaluation and the workflow.

Kept apart from the scoring code (which imports the models and Lightning) so that the
Snakefile and the evaluation can read them cheaply.
"""

from __future__ import annotations

# scores that need no model: computed from the images themselves
TRIVIAL = ("brightness", "mask_fraction", "intensity")
