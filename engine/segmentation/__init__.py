"""Semantic segmentation: ESPNetv2 unaries (PASCAL VOC) for a CRF-RNN (Zheng et al. 2015).

Importing this package never imports torch: `espnetv2` and `models.load_network` do, the manifest,
preprocessing and the `.pth` reader do not.
"""
