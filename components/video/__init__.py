"""Video action recognition: decoding, samplers, optical flow, procedural motion data, models/."""
