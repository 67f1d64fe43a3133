"""recgen orchestration: stages, DAGs, the CLI, Ray Train/Tune glue."""
