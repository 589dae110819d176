"""The photo with its label overlays in one QGraphicsScene, so zoom, pan and fit can never misalign them.

Scene units are the photo's pixels. Overlays computed at a lower (working) resolution are pixmap items
scaled up by a transform, drawn with nearest-neighbour sampling so class borders stay crisp. The split
view puts the unaries' overlay in a clip rectangle left of a draggable divider and the CRF's overlay in
one right of it.
"""

from __future__ import annotations

import sys

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QMouseEvent, QPainter, QPen, QPixmap, QTransform, QWheelEvent
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0


def argb32_to_qimage(argb: np.ndarray) -> QImage:
    """H x W uint32 premultiplied 0xAARRGGBB pixels as a QImage that owns a copy (one memcpy, GIL released)."""
    height, width = argb.shape
    image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    if width and height:
        target = np.frombuffer(image.bits(), np.uint32).reshape(height, image.bytesPerLine() // 4)
        target[:, :width] = argb
    return image


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """An H x W x 3 uint8 array as a 32-bit QImage: the format a pixmap uses, so showing it costs no conversion
    on the UI thread. Written straight into the QImage's own buffer by numpy (which lets go of the GIL while
    copying), so a 12-megapixel photo made on the worker does not stall the UI thread."""
    rgb = np.asarray(rgb, np.uint8)
    height, width = rgb.shape[:2]
    little = sys.byteorder == "little"
    image = QImage(width, height, QImage.Format.Format_RGB32 if little else QImage.Format.Format_RGBX8888)
    if width and height:
        target = np.frombuffer(image.bits(), np.uint8).reshape(height, image.bytesPerLine())[:, : 4 * width]
        target = target.reshape(height, width, 4)
        order = (2, 1, 0) if little else (0, 1, 2)  # RGB32 is 0xffRRGGBB: B, G, R, X in memory on little-endian
        for channel, source in enumerate(order):
            target[..., channel] = rgb[..., source]
        target[..., 3] = 255
    return image


class Divider(QGraphicsRectItem):
    """The split view's handle: a full-height bar that only moves sideways, within the photo."""

    def __init__(self, canvas: SegmentationCanvas) -> None:
        super().__init__()
        self._canvas = canvas
        self.setBrush(QBrush(QColor(255, 255, 255, 230)))
        self.setPen(QPen(QColor(0, 0, 0, 160), 0))
        self.setCursor(Qt.CursorShape.SplitHCursor)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setZValue(10)
        self.setToolTip("Drag to compare: unaries alone on the left, after the CRF on the right")

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):  # noqa: N802 (Qt's name)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange:
            width = self._canvas.photo_rect.width()
            x = min(max(float(value.x()), 0.0), width)
            return QPointF(x, 0.0)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            self._canvas.divider_moved(self.pos().x())
        return super().itemChange(change, value)


class SegmentationCanvas(QGraphicsView):
    """Zoom (wheel, +/-), pan (drag), fit (F or double-click); reports the photo pixel under the cursor."""

    hovered = Signal(float, float)  # photo pixels; (-1, -1) when the cursor leaves the photo
    split_changed = Signal(float)  # the divider's position as a fraction of the width
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QBrush(QColor(48, 48, 52)))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setAcceptDrops(False)  # the tab takes drops
        self.photo_item = QGraphicsPixmapItem()
        self.photo_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.photo_item)
        self.overlay_layer = QGraphicsRectItem()  # parent of both overlays: opacity and hiding in one place
        self.overlay_layer.setPen(QPen(Qt.PenStyle.NoPen))
        self.overlay_layer.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self.scene().addItem(self.overlay_layer)
        self.left_clip, self.left_overlay = self._clipped_overlay()
        self.right_clip, self.right_overlay = self._clipped_overlay()
        self.divider = Divider(self)
        self.scene().addItem(self.divider)
        self.divider.hide()
        self.left_tag, self.right_tag = self._tag("Unaries"), self._tag("After CRF")
        self.photo_rect = QRectF()
        self._full: QImage | None = None
        self._preview: QImage | None = None
        self._photo_source: QImage | None = None
        self._split = 0.5
        self._fitted = True

    def _tag(self, text: str) -> QGraphicsSimpleTextItem:
        """A caption that keeps its screen size at any zoom (the split view's 'which side is which')."""
        tag = QGraphicsSimpleTextItem(text, self.divider)
        tag.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        tag.setBrush(QBrush(QColor(255, 255, 255)))
        tag.setPen(QPen(QColor(0, 0, 0, 200), 0.6))
        font = tag.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        tag.setFont(font)
        return tag

    def set_tags(self, left: str, right: str) -> None:
        self.left_tag.setText(left)
        self.right_tag.setText(right)
        self._place_tags()

    def _place_tags(self) -> None:
        """Left caption ends at the divider, right one starts after it, both near the top of the view."""
        zoom = max(self.zoom, 1e-6)
        top = max(0.0, self.mapToScene(0, 0).y()) + 8 / zoom
        self.left_tag.setPos(-(self.left_tag.boundingRect().width() + 8) / zoom, top)
        self.right_tag.setPos(8 / zoom, top)

    def _clipped_overlay(self) -> tuple[QGraphicsRectItem, QGraphicsPixmapItem]:
        clip = QGraphicsRectItem(self.overlay_layer)
        clip.setPen(QPen(Qt.PenStyle.NoPen))
        clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
        item = QGraphicsPixmapItem(clip)
        item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # nearest: crisp class borders
        return clip, item

    # --- content ---------------------------------------------------------------------------------------------
    def set_photo(self, image: QImage, preview: QImage | None = None) -> None:
        """A new photo: overlays cleared, scene sized to it, view fitted.

        `preview`, a smaller copy of a large photo, is drawn while the view shows the photo at most at the
        preview's scale: smooth-scaling 12 megapixels on every repaint would stall the UI thread.
        """
        self._full = image
        self._preview = preview if preview is not None and preview.width() < image.width() else None
        self._photo_source = None
        self.photo_rect = QRectF(0, 0, image.width(), image.height())
        self.scene().setSceneRect(self.photo_rect)
        self.left_overlay.setPixmap(QPixmap())
        self.right_overlay.setPixmap(QPixmap())
        self._layout_split()
        self.fit()

    def set_overlay(self, argb: np.ndarray, side: str = "right") -> None:
        """An H x W premultiplied ARGB32 overlay at any resolution, stretched over the photo."""
        item = self.right_overlay if side == "right" else self.left_overlay
        height, width = argb.shape[:2]
        item.setPixmap(QPixmap.fromImage(argb32_to_qimage(argb)))
        item.setTransform(
            QTransform.fromScale(self.photo_rect.width() / max(width, 1), self.photo_rect.height() / max(height, 1))
        )

    def set_overlay_opacity(self, opacity: float) -> None:
        self.overlay_layer.setOpacity(opacity)

    def set_overlay_visible(self, visible: bool) -> None:
        self.overlay_layer.setVisible(visible)

    def set_split(self, enabled: bool, fraction: float | None = None) -> None:
        """Split view on or off; the left overlay (unaries) only shows in split view."""
        if fraction is not None:
            self._split = min(max(fraction, 0.0), 1.0)
        self.divider.setVisible(enabled)
        self.left_clip.setVisible(enabled)
        self._layout_split()

    @property
    def split_enabled(self) -> bool:
        return self.divider.isVisible()

    def _layout_split(self) -> None:
        """Clip rectangles for the split (all of the photo to the right overlay when not split); the divider
        keeps its place while hidden, so the split comes back where the user left it."""
        width, height = self.photo_rect.width(), self.photo_rect.height()
        bar = max(2.0, width / 200)
        self.divider.setRect(QRectF(-bar / 2, 0, bar, height))
        self.divider.setPos(width * self._split, 0)
        self._clip(width * self._split if self.split_enabled else 0.0)

    def _clip(self, x: float) -> None:
        width, height = self.photo_rect.width(), self.photo_rect.height()
        self.left_clip.setRect(QRectF(0, 0, x, height))
        self.right_clip.setRect(QRectF(x, 0, width - x, height))

    def divider_moved(self, x: float) -> None:
        width = self.photo_rect.width()
        if width <= 0 or not self.split_enabled:
            return
        self._split = x / width
        self._clip(x)
        self.split_changed.emit(self._split)

    @property
    def split(self) -> float:
        return self._split

    def _choose_photo_pixmap(self) -> None:
        """The preview while it has enough pixels for the zoom, else the full photo."""
        if self._full is None:
            return
        use = self._full
        if self._preview is not None and self.zoom * self._full.width() <= self._preview.width():
            use = self._preview
        if use is not self._photo_source:
            self._photo_source = use
            self.photo_item.setPixmap(QPixmap.fromImage(use))
            scale = self._full.width() / use.width()
            self.photo_item.setTransform(QTransform.fromScale(scale, self._full.height() / use.height()))

    # --- zoom and pan ------------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """The whole photo in the window (also after resizes, until the user zooms)."""
        if not self.photo_rect.isEmpty():
            self.fitInView(self.photo_rect, Qt.AspectRatioMode.KeepAspectRatio)
            self._fitted = True
            self._zoomed()

    def zoom_by(self, factor: float) -> None:
        target = min(max(self.zoom * factor, MIN_ZOOM), MAX_ZOOM)
        factor = target / self.zoom
        self.scale(factor, factor)
        self._fitted = False
        self._zoomed()

    def actual_size(self) -> None:
        self.setTransform(QTransform())
        self._fitted = False
        self._zoomed()

    def _zoomed(self) -> None:
        self._choose_photo_pixmap()
        self._place_tags()
        self.zoom_changed.emit(self.zoom)

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802 (Qt's name)
        super().scrollContentsBy(dx, dy)
        self._place_tags()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt's name)
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(ZOOM_STEP**steps)
        event.accept()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        self.fit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        super().mouseMoveEvent(event)
        point = self.mapToScene(event.position().toPoint())
        if self.photo_rect.contains(point):
            self.hovered.emit(point.x(), point.y())
        else:
            self.hovered.emit(-1.0, -1.0)

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.hovered.emit(-1.0, -1.0)
        super().leaveEvent(event)
