# Build the Windows one-folder app (dist\penwright\penwright.exe) and wrap it as
# dist\penwright-<version>-windows-<arch>.zip.
#
# Run from the repository root with the project's environment active (pip install . done):
#     powershell -ExecutionPolicy Bypass -File packaging\build_windows.ps1
# Installs PyInstaller into that environment if missing. Torch is never bundled, even if installed.
#
# Notes:
#   * ONNX Runtime's DLLs: onnxruntime\capi\onnxruntime.dll and onnxruntime_providers_shared.dll must sit
#     beside onnxruntime_pybind11_state.pyd; the spec collects them with collect_dynamic_libs("onnxruntime").
#     "DLL load failed while importing onnxruntime_pybind11_state" in the frozen app means one is missing or
#     an older onnxruntime.dll from C:\Windows\System32 (some Windows builds ship one) was picked up first.
#   * The Visual C++ runtime: onnxruntime needs vcruntime140.dll, vcruntime140_1.dll and msvcp140.dll.
#     PyInstaller bundles the copies that come with Python and PySide6, but vcruntime140_1.dll is not always
#     among them; the script below checks the bundle and copies it from System32 if needed. The cleanest fix
#     for end users is the Microsoft Visual C++ Redistributable (x64), which an installer can chain.
#   * The executable is a console app so that `penwright --selftest` and the subcommands print; to hide the
#     console when the window is opened from the Start menu, build a second EXE with console=False in the
#     spec (or use pythonw-style launching) - not done yet.
#   * Windows Defender / SmartScreen flag unsigned PyInstaller apps now and then: sign penwright.exe with
#     signtool (Authenticode, with a timestamp server) and never use UPX (the spec turns it off).
#   * Long paths: keep the checkout short (C:\src\penwright) - Qt's plugin paths under _internal are deep.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$python = if ($env:PYTHON) { $env:PYTHON } else { "python" }

& $python -c "import PyInstaller" 2>$null
if ($LASTEXITCODE -ne 0) {
    Write-Host "installing PyInstaller"
    & $python -m pip install "pyinstaller>=6.10"
    if ($LASTEXITCODE -ne 0) { throw "pip install pyinstaller failed" }
}

$version = (& $python -c "import engine; print(engine.__version__)").Trim()
$arch = if ([Environment]::Is64BitOperatingSystem) { "x64" } else { "x86" }
if ($env:PROCESSOR_ARCHITECTURE -eq "ARM64") { $arch = "arm64" }

Remove-Item -Recurse -Force dist\penwright, build\pyinstaller -ErrorAction SilentlyContinue
& $python -m PyInstaller --noconfirm --clean --log-level WARN `
    --distpath dist --workpath build\pyinstaller packaging\penwright.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }

$internal = "dist\penwright\_internal"
foreach ($dll in @("vcruntime140.dll", "vcruntime140_1.dll", "msvcp140.dll")) {
    if (-not (Get-ChildItem -Path dist\penwright -Recurse -Filter $dll -ErrorAction SilentlyContinue)) {
        $system = Join-Path $env:SystemRoot "System32\$dll"
        if (Test-Path $system) {
            Write-Host "copying $dll from System32 into the bundle"
            Copy-Item $system $internal
        } else {
            Write-Warning "$dll is neither bundled nor in System32: users need the Visual C++ Redistributable"
        }
    }
}

$torch = Get-ChildItem -Path dist\penwright -Recurse -Filter "*torch*" -ErrorAction SilentlyContinue
if ($torch) {
    $torch | ForEach-Object { Write-Error "torch found in the bundle: $($_.FullName)" -ErrorAction Continue }
    exit 1
}

if (-not $env:SKIP_SELFTEST) {
    $env:QT_QPA_PLATFORM = "offscreen"
    & dist\penwright\penwright.exe --selftest
    if ($LASTEXITCODE -ne 0) { throw "self-test failed" }
    Remove-Item Env:QT_QPA_PLATFORM
}

$zip = "dist\penwright-$version-windows-$arch.zip"
Remove-Item -Force $zip -ErrorAction SilentlyContinue
Compress-Archive -Path dist\penwright -DestinationPath $zip
$size = "{0:N0} MB" -f ((Get-ChildItem dist\penwright -Recurse | Measure-Object Length -Sum).Sum / 1MB)
Write-Host "built dist\penwright ($size) and $zip"
