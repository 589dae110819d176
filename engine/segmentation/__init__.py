"""Semantic segmentation: ESPNetv2 unaries (PASCAL VOC) or your own ONNX model, refined by a CRF-RNN.

The public entry point is `job` (SegmentationJob / SegmentationRequest / SegmentationResult). Importing
this package never imports torch: `espnetv2`, `onnx_export`, `crf.crfrnn`, `crf.fit` and
`models.load_network` do; the manifest, preprocessing, the `.pth` reader, the ONNX Runtime paths
(`onnx_espnet`, `custom`) and the numpy CRF do not.
"""
