"""Penwright's engine: handwriting and segmentation models, training, inference and file formats.

Importing the engine never imports torch or Qt; torch is loaded only by training and the PyTorch backend.
"""

__version__ = "0.1.0"
