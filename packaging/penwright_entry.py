"""PyInstaller's entry point: the frozen `penwright` is the same command as the installed one."""

import multiprocessing
import sys

from engine.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # harmless where unused; needed if a worker process is ever spawned
    sys.exit(main())
