"""MLflow "models from code" entry point of the churnlens uplift pyfunc model.

``mlflow.pyfunc.log_model(python_model=<this file>)`` stores this file's source instead of a
pickle; loading runs it and fills the model from the logged artifacts
(``uplift_metadata.json``, ``uplift_<k>.txt``) in :meth:`UpliftModel.load_context`.
"""

import mlflow

from churnlens.uplift.model import UpliftModel

mlflow.models.set_model(UpliftModel())
