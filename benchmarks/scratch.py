"""One temporary folder for everything a benchmark writes (stores of a million records take
hundreds of megabytes), removed when the benchmark ends. Imported first by each benchmark:
every `tempfile.mkdtemp()` of its process, and of the processes it starts, lands in it."""

import atexit
import os
import shutil
import tempfile

FOLDER = tempfile.mkdtemp(prefix="payamak-bench-")
tempfile.tempdir = FOLDER
os.environ["TMPDIR"] = FOLDER
atexit.register(shutil.rmtree, FOLDER, ignore_errors=True)
