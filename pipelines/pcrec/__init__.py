"""The PCRec pipeline (cross-domain pre-training + fine-tuning)."""
