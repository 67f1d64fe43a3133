"""VQ specifics of the Ray Tune search (``recgen tune vq``, ``configs/vq/tune.yaml``).

The engine is :mod:`pipelines.core.tune`. VQ adds one check: trials are selected on a
validation metric of ``train_vq``'s history (``val_nmse``: NMSE on ``train.val_images`` training
images held out from the fit), never on the training NMSE (``nmse``, the batches the model was
fitted on) and never on the test split (``train_vq/test_metrics``, reported once, never used to
select). A space that names a training metric, or a trial config with no held-out images, fails
before anything runs.
"""
from __future__ import annotations

from components.errors import ConfigError
from pipelines.core.tune import Tunable, TuneSpec

#: validation metrics of train_vq/history and the direction that is better
VALIDATION_METRICS = {"val_nmse": "min"}


def check_trial(spec: TuneSpec, cfg) -> None:
    """The search selects on a validation metric that this trial's config reports."""
    if spec.trial_stage != "train_vq":
        return
    if spec.metric not in VALIDATION_METRICS:
        raise ConfigError(f"tune metric '{spec.metric}' is not a validation metric of train_vq/history: "
                          f"hyper-parameters are chosen on validation only; set metric to one of "
                          f"{sorted(VALIDATION_METRICS)} in the search space")
    if spec.mode != VALIDATION_METRICS[spec.metric]:
        raise ConfigError(f"tune metric '{spec.metric}' is better when lower: set mode: "
                          f"{VALIDATION_METRICS[spec.metric]} in the search space")
    if cfg.train.val_images <= 0:
        raise ConfigError(f"tune metric '{spec.metric}' needs held-out images: train.val_images is "
                          f"{cfg.train.val_images}; set it in the space's fixed keys "
                          f"(train.val_images: 64) or --set train.val_images=N")


TUNABLE = Tunable(check=check_trial)
