"""The Segmentation tab: a Qt-free view model (`view_model`, `exports`) and thin Qt widgets around it.

The widgets talk to the engine only through `engine.segmentation.job` (requests, results, jobs); every
number they show comes from a `SegmentationResult`, every drawing from the view model's arrays.
"""
