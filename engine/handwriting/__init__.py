"""Handwriting synthesis and prediction (Graves 2013): data, models, training, sampling."""
