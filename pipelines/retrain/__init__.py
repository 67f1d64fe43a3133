"""Scheduled retraining: new interaction partitions -> pipeline run -> registry decision.

`recgen retrain --config configs/retrain/ml1m.yaml` (see :mod:`pipelines.retrain.retrain`).
"""
