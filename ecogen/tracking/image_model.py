"""The pyfunc of every model EcoGen logs: raw uint8 images in, the exported program's output out.

Not imported by EcoGen.  :func:`ecogen.tracking.mlflow_log.log_model` gives this file's path to
MLflow ("models from code"), which copies it into each model (beside ``MLmodel``) and runs it
wherever the model is loaded: so it imports numpy, torch and mlflow only.  The network and its
preprocessing are in the exported program (``torch.export``, :mod:`ecogen.models.export`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel, PythonModelContext

PROGRAM = "program"  # the artifact that holds the exported program (log_model logs it under this key)


class ImageModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        self.program = torch.export.load(context.artifacts[PROGRAM]).module()

    # model_input typed np.ndarray: a type MLflow infers no signature from, so the logged one holds
    def predict(
        self, context: PythonModelContext, model_input: np.ndarray, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """uint8 images (N, C, H, W), or (N, H, W) single-channel → (N, classes) or (N, features)."""
        x = np.asarray(model_input)
        if x.ndim == 3:
            x = x[:, None]
        with torch.inference_mode():
            return self.program(torch.from_numpy(np.ascontiguousarray(x))).numpy()


set_model(ImageModel())
