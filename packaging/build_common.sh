# Shared by build_linux.sh and build_macos.sh (sourced, not run): from the repository root, with the
# project's environment active, make sure PyInstaller is there, read the version, and build the
# one-folder app from packaging/penwright.spec into dist/.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python}"

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "installing PyInstaller into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    "$PYTHON" -m pip install "pyinstaller>=6.10"
fi

VERSION="$("$PYTHON" -c 'import engine; print(engine.__version__)')"
ARCH="$(uname -m)"

run_pyinstaller() {
    rm -rf dist/penwright dist/Penwright.app build/pyinstaller
    "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
        --distpath dist --workpath build/pyinstaller packaging/penwright.spec
}
