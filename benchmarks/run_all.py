"""Run every benchmark and print their tables: python benchmarks/run_all.py"""

import runpy
from pathlib import Path

HERE = Path(__file__).resolve().parent
for name in ("io_speed.py", "render_speed.py", "library_search.py", "retarget_check.py"):
    print(f"\n## {name}\n", flush=True)
    runpy.run_path(str(HERE / name), run_name="__main__")
