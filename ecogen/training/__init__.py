"""Lightning modules and loops: MAE pre-training, supervised and split semi-supervised training."""
