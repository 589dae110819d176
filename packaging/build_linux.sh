#!/usr/bin/env bash
# Build the Linux one-folder app (dist/penwright/penwright) and wrap it in dist/penwright-<version>-linux-<arch>.tar.gz.
#
# Run from the repository root with the project's environment active (pip install . or -e . done):
#     packaging/build_linux.sh            # build, self-test, archive
#     SKIP_SELFTEST=1 packaging/build_linux.sh
# Installs PyInstaller into that environment if it is missing. Torch is never bundled, even if installed.
set -euo pipefail

# shellcheck source=packaging/build_common.sh
source "$(dirname "$0")/build_common.sh"
run_pyinstaller

if find dist/penwright -iname '*torch*' | grep -q .; then
    echo "error: torch found in the bundle:" >&2
    find dist/penwright -iname '*torch*' >&2
    exit 1
fi

if [ -z "${SKIP_SELFTEST:-}" ]; then
    QT_QPA_PLATFORM=offscreen dist/penwright/penwright --selftest
fi

ARCHIVE="dist/penwright-${VERSION}-linux-${ARCH}.tar.gz"
tar -C dist -czf "$ARCHIVE" penwright
echo "built dist/penwright ($(du -sh dist/penwright | cut -f1)) and $ARCHIVE ($(du -sh "$ARCHIVE" | cut -f1))"
