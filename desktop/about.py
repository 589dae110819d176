"""Help → About: versions (for bug reports) and the licences that bind what Penwright ships."""

from __future__ import annotations

import platform
from html import escape

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from engine import __version__

IAM_ONDB_URL = "https://fki.tic.heia-fr.ch/databases/iam-on-line-handwriting-database"
IAM_ONDB_CITATION = (
    'M. Liwicki and H. Bunke, "IAM-OnDB - an On-Line English Sentence Database Acquired from Handwritten '
    'Text on a Whiteboard", Proc. 8th International Conference on Document Analysis and Recognition '
    "(ICDAR), 2005, vol. 2, pp. 956–961."
)


def versions() -> dict[str, str]:
    """What a bug report needs to know about this installation."""
    return {
        "Penwright": __version__,
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
    }


def about_html() -> str:
    rows = "".join(
        f"<tr><td style='padding-right:12px'><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>"
        for k, v in versions().items()
    )
    return f"""
<h2 style="margin-bottom:2px">Penwright {escape(__version__)}</h2>
<p>Handwriting synthesis after A. Graves, <i>Generating Sequences With Recurrent Neural Networks</i> (2013).</p>
<table>{rows}</table>
<h3>Licences</h3>
<p><b>Penwright's code</b> is released under the MIT licence.</p>
<p><b>The handwriting model weights</b> were trained on the IAM On-Line Handwriting Database (IAM-OnDB) and
may only be used under its terms: <b>non-commercial research</b> use. Work that uses them should cite<br>
{escape(IAM_ONDB_CITATION)}<br>
<a href="{IAM_ONDB_URL}">{IAM_ONDB_URL}</a></p>
<p><b>The text models</b> (Dream): <code>text-shakespeare</code> was trained on Shakespeare's plays (public
domain; the tiny-shakespeare corpus); <code>text-iam</code> on the transcriptions of IAM-OnDB's training
lines, so the IAM-OnDB terms above (non-commercial research) bind it too.</p>
<p><b>The sample photo</b> (Segmentation tab): Chelsea the cat by Stefan van der Walt, dedicated to the public
domain (CC0 1.0); shipped with scikit-image as <code>skimage.data.chelsea</code>.</p>
<p><b>Qt and PySide6</b> (Qt for Python) are used under the GNU Lesser General Public License version 3
(LGPLv3); you may replace them with your own build of the same version.
<a href="https://www.qt.io/licensing/open-source-lgpl-obligations">Qt's LGPL obligations</a>.</p>
"""


class AboutDialog(QDialog):
    """A plain dialog rather than QMessageBox.about: the licence text needs room and working links."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Penwright")
        self.text = QLabel(about_html())
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        self.text.setOpenExternalLinks(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.text.setMinimumWidth(520)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
