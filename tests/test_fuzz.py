"""A bounded fuzz run over /openapi.json in the suite: no request gets a 5xx or hangs.

bench/fuzz.py runs the same fuzzer far longer (docs/reliability.md, "Fuzzing")."""

from __future__ import annotations

from pathlib import Path

from fuzzing import Fuzzer, fuzz_app

EXAMPLES_PER_OPERATION = 10  # about 550 requests, under ten seconds


def test_fuzzed_requests_get_no_server_error_and_no_hang(tmp_path: Path) -> None:
    with fuzz_app(tmp_path) as app:
        tally = Fuzzer(app).run(EXAMPLES_PER_OPERATION, seed=0)
    assert tally.cases > 400
    assert tally.statuses[200] > 0  # authenticated requests reached the handlers, not just 401s
    assert not tally.server_errors, "\n\n".join(tally.server_errors)
    assert not tally.hangs, "\n\n".join(tally.hangs)
