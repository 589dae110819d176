#!/usr/bin/env bash
# Build Penwright.app (PyInstaller BUNDLE from packaging/penwright.spec) and wrap it as
# dist/Penwright-<version>-macos-<arch>.zip (and a .dmg where hdiutil is available).
#
# Run from the repository root with the project's environment active (pip install . done):
#     packaging/build_macos.sh
# Installs PyInstaller into that environment if missing. Torch is never bundled, even if installed.
# Build on the oldest macOS you support and on the architecture you ship (arm64 on Apple silicon runners,
# x86_64 on Intel ones); a universal2 build needs universal2 wheels of every native dependency, which
# onnxruntime does not publish, so ship one build per architecture.
#
# Signing and notarisation (needed for Gatekeeper to open a downloaded app without warnings):
#   * Do NOT use `codesign --deep`: Apple discourages it; it signs nested code with the wrong options and
#     entitlements. Sign the inner binaries first (every .so/.dylib and the Qt frameworks under
#     Penwright.app/Contents/Frameworks and Contents/Resources), innermost first, then the main executable,
#     then the bundle itself:
#         find Penwright.app/Contents \( -name '*.so' -o -name '*.dylib' \) -print0 |
#             xargs -0 codesign --force --timestamp --options runtime --sign "$IDENTITY"
#         (the same for each Qt*.framework directory), then
#         codesign --force --timestamp --options runtime --entitlements packaging/entitlements.plist \
#             --sign "$IDENTITY" Penwright.app
#     PyInstaller can sign the collected binaries itself when PENWRIGHT_CODESIGN_IDENTITY is set (the spec
#     passes it on as codesign_identity; PENWRIGHT_ENTITLEMENTS as entitlements_file).
#   * Use the hardened runtime (--options runtime): notarisation requires it. A PyInstaller app usually
#     needs no entitlements; if ONNX Runtime or Qt refuse to load under it, try
#     com.apple.security.cs.disable-library-validation (never allow-unsigned-executable-memory unless needed).
#   * Notarise the zip or dmg, then staple the ticket to the .app (and dmg):
#         xcrun notarytool submit dist/Penwright-*.zip --keychain-profile penwright --wait
#         xcrun stapler staple dist/Penwright.app
#     A zip cannot be stapled: re-zip after stapling the .app.
#   * Verify: codesign --verify --strict --verbose=2 dist/Penwright.app; spctl -a -vv dist/Penwright.app
# Unsigned builds (this script without an identity) run after right-click > Open, or after
# `xattr -dr com.apple.quarantine Penwright.app`.
set -euo pipefail

# shellcheck source=packaging/build_common.sh
source "$(dirname "$0")/build_common.sh"
run_pyinstaller

if find dist/penwright dist/Penwright.app -iname '*torch*' | grep -q .; then
    echo "error: torch found in the bundle:" >&2
    find dist/penwright dist/Penwright.app -iname '*torch*' >&2
    exit 1
fi

if [ -z "${SKIP_SELFTEST:-}" ]; then
    QT_QPA_PLATFORM=offscreen dist/Penwright.app/Contents/MacOS/penwright --selftest
fi

ZIP="dist/Penwright-${VERSION}-macos-${ARCH}.zip"
rm -f "$ZIP"
# ditto keeps the bundle's symlinks, extended attributes and signatures (zip -r would break them).
ditto -c -k --sequesterRsrc --keepParent dist/Penwright.app "$ZIP"
if command -v hdiutil >/dev/null && [ -z "${SKIP_DMG:-}" ]; then
    DMG="dist/Penwright-${VERSION}-macos-${ARCH}.dmg"
    rm -f "$DMG"
    hdiutil create -volname "Penwright" -srcfolder dist/Penwright.app -ov -format UDZO "$DMG"
fi
echo "built dist/Penwright.app ($(du -sh dist/Penwright.app | cut -f1)) and $ZIP"
