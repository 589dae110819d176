"""What a segmentation model is, kept with the model (in the manner of torchvision's weight enums).

Everything needed to use a checkpoint correctly travels with it: the class names and colours its
label indices mean, the exact preprocessing it was trained and evaluated with, where it came from
and under which licence, and the checkpoint's SHA-256 so a wrong or damaged file is caught on load.
No torch here: the desktop app and the ONNX path read this too.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field

VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOC_IGNORE = 255  # "void" in VOC ground truth: object boundaries and unlabelled objects
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EDGENETS_URL = "https://github.com/sacmehta/EdgeNets"
EDGENETS_ZOO = "https://github.com/sacmehta/EdgeNets/raw/master/model/segmentation/model_zoo/espnetv2/"
ESPNETV2_PAPER = (
    "Sachin Mehta, Mohammad Rastegari, Linda Shapiro, Hannaneh Hajishirzi. ESPNetv2: A Light-weight, Power "
    "Efficient, and General Purpose Convolutional Neural Network. CVPR 2019"
)


def voc_palette(n: int = 256) -> tuple[tuple[int, int, int], ...]:
    """The standard VOC colour map: bits of the class index interleaved into R, G, B from the high bit down."""
    colours = []
    for index in range(n):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


@dataclass(frozen=True)
class Preprocessing:
    """Image -> network input: Pillow RGB, resize, /255, (x - mean) / std, CHW float32.

    resize "stretch": Pillow BILINEAR (antialiased when shrinking) to exactly input_size (W, H),
    aspect ratio not kept; this is the EdgeNets evaluation protocol behind the published numbers.
    """

    input_size: tuple[int, int]  # (W, H)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "stretch"
    resample: str = "bilinear"  # a Pillow filter name
    labels_to_original: str = "nearest"  # label map (not logits) back to the image size, Pillow NEAREST


@dataclass(frozen=True)
class SegmentationModelInfo:
    """Metadata of one published checkpoint."""

    name: str
    architecture: str
    scale: float  # ESPNetv2 width multiplier s
    train_size: tuple[int, int]  # (W, H)
    checkpoint: str  # file name as published
    sha256: str
    url: str
    preprocessing: Preprocessing
    classes: tuple[str, ...] = VOC_CLASSES
    palette: tuple[tuple[int, int, int], ...] = field(default_factory=lambda: voc_palette(len(VOC_CLASSES)))
    ignore_index: int = VOC_IGNORE
    dataset: str = "PASCAL VOC 2012 (21 classes)"
    licence: str = "MIT"
    licence_holder: str = "Copyright (c) 2021 Sachin Mehta (EdgeNets)"
    source: str = EDGENETS_URL
    paper: str = ESPNETV2_PAPER
    parameters: int = 0
    voc_val_miou: float | None = None  # as reported by the authors

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        """JSON-ready metadata (for an exported model file or the About box)."""
        return asdict(self)


def _espnetv2(scale: float, size: int, sha256: str, parameters: int, miou: float) -> SegmentationModelInfo:
    checkpoint = f"espnetv2_s_{scale}_pascal_{size}x{size}.pth"
    return SegmentationModelInfo(
        name=f"espnetv2-s{scale}-pascal-{size}",
        architecture="espnetv2",
        scale=scale,
        train_size=(size, size),
        checkpoint=checkpoint,
        sha256=sha256,
        url=EDGENETS_ZOO + checkpoint,
        preprocessing=Preprocessing(input_size=(size, size)),
        parameters=parameters,
        voc_val_miou=miou,
    )


class SegmentationWeights(enum.Enum):
    """The published checkpoints Penwright knows; `DEFAULT` is the one to use unless told otherwise."""

    ESPNETV2_S2_0_PASCAL_384 = _espnetv2(
        2.0, 384, "bc479586b0ba9254e02589020346931a14d99028ad6bac4817198be6d9e719a6", 789_253, 67.0
    )
    ESPNETV2_S0_5_PASCAL_256 = _espnetv2(
        0.5, 256, "9c7bebecd73c603a7eb2d8833eb2c54d0627e37e731548b7833291873e0a2e67", 80_353, 39.8
    )
    DEFAULT = ESPNETV2_S2_0_PASCAL_384  # an alias, as in torchvision

    @property
    def meta(self) -> SegmentationModelInfo:
        return self.value

    @classmethod
    def by_name(cls, name: str) -> SegmentationWeights:
        """Look up by enum name or by the model's `name` (e.g. "espnetv2-s2.0-pascal-384")."""
        for member in cls:
            if name in (member.name, member.value.name):
                return member
        known = ", ".join(m.value.name for m in cls)
        raise KeyError(f"no segmentation model called {name!r}; known: {known}")
