"""lorsa: low-rank + sparse personalisation.

Each task ``i`` gets a linear model ``theta_i = U w_i + b_i``: a shared orthonormal basis ``U`` (d × r), the task's
``r`` coordinates ``w_i`` and ``k`` task-specific weights ``b_i`` chosen from anywhere, fitted by AMHT-LRS.
"""

__version__ = "0.1.0"

from .datasets.synthetic import make_lrs_regression  # noqa: E402
from .io import ModelFileError  # noqa: E402
from .model import LRSRegressor  # noqa: E402
from .model_cv import LRSRegressorCV  # noqa: E402
from .privacy.estimator import PrivateLRSRegressor  # noqa: E402

__all__ = ["LRSRegressor", "LRSRegressorCV", "ModelFileError", "PrivateLRSRegressor", "make_lrs_regression",
           "__version__"]
