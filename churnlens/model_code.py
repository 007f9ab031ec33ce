"""MLflow "models from code" entry point of the churnlens pyfunc model.

``mlflow.pyfunc.log_model(python_model=<this file>)`` stores this file's source instead of a
pickle of the model object; loading runs it and then fills the model from the logged artifacts
(``booster.txt``, ``calibrator.json``, ``metadata.json``) in :meth:`ChurnModel.load_context`.
Nothing is unpickled when a churnlens model is loaded.
"""

import mlflow

from churnlens.model import ChurnModel

mlflow.models.set_model(ChurnModel())
