"""Inference backends: run a model file's network one step at a time (see engine.handwriting.sampling.Stepper)."""
