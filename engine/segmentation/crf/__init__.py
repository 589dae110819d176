"""CRF-RNN (Zheng et al. 2015): dense-CRF mean-field inference on network unaries as a recurrent layer.

`permutohedral` (the fast Gaussian filter), `kernels` (pixel features), `meanfield` (inference) and
`working` (photos of any size at a working resolution) are numpy only, so the desktop and ONNX paths run
without torch; `crfrnn` holds the learnable torch layer.
"""
