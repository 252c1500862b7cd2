"""Score per module from `mutmut results --all true` on stdin: killed / (all mutants that were run).

A mutant no fast test reaches ("no tests") counts as a survivor; "skipped" and "not checked" mutants were not
run and are left out. Arguments restrict the table to those dotted module names.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict

KILLED = {"killed", "timeout", "caught by type check"}
NOT_RUN = {"not checked", "skipped"}


def main() -> int:
    wanted = set(sys.argv[1:])
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for line in sys.stdin:
        match = re.match(r"\s*(\S+?)\.x[_ǁ]\S*:\s*(.+?)\s*$", line)
        if not match:
            continue
        module, status = match.groups()
        if wanted and module not in wanted:
            continue
        counts[module][status] += 1
    print("| module | mutants | killed | survived | no test reaches | score |")
    print("|---|---|---|---|---|---|")
    weakest = 100.0
    for module in sorted(counts):
        status = counts[module]
        run = sum(n for s, n in status.items() if s not in NOT_RUN)
        killed = sum(n for s, n in status.items() if s in KILLED)
        score = 100.0 * killed / run if run else 100.0
        weakest = min(weakest, score)
        print(f"| {module} | {run} | {killed} | {status['survived']} | {status['no tests']} | {score:.1f} % |")
    return 0 if weakest >= 90.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
