"""Stages of the vq pipeline (see pipelines/vq/dag.py)."""
