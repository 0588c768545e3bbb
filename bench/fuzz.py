"""A long fuzz run over Stockade's own OpenAPI document, in process on the fake models.

The fuzzer of tests/test_fuzz.py (tests/fuzzing.py) with many more examples per operation; prints
the cases sent, the 5xx replies and the hangs, with a curl command for each finding. Run with
`make bench`, or `python bench/fuzz.py [EXAMPLES_PER_OPERATION]`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fuzzing import Fuzzer, fuzz_app  # noqa: E402

EXAMPLES_PER_OPERATION = 200  # 56 operations: over 10,000 cases


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES_PER_OPERATION
    with tempfile.TemporaryDirectory() as data_dir, fuzz_app(Path(data_dir)) as app:
        started = time.monotonic()
        tally = Fuzzer(app).run(examples)
        elapsed = time.monotonic() - started
    print(f"fuzz: {tally.summary()} in {elapsed:.0f} s")
    for finding in tally.server_errors + tally.hangs:
        print(finding, end="\n\n")
    sys.exit(1 if tally.server_errors or tally.hangs else 0)


if __name__ == "__main__":
    main()
