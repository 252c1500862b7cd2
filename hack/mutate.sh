#!/usr/bin/env bash
# Mutation testing of the modules that decide safety (the list is [tool.mutmut] only_mutate in pyproject.toml).
#
#   hack/mutate.sh                      every listed module
#   hack/mutate.sh tasks.retry ...      only these modules (dotted names)
#
# mutmut copies the sources to mutants/, then for each mutant runs only the fast tests that reach the mutated
# function ([tool.mutmut] pytest_add_cli_args_test_selection). Results are cached in mutants/ between runs
# (MUTATE_CLEAN=1 starts afresh). Not part of `make test` or CI: it takes tens of minutes on 2 cores, so it
# runs under nice. Prints the score per module; docs/benchmarks.md records the last measured one.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
CHILDREN=${MUTATE_CHILDREN:-2}
export FLEETFLOW_CHART_MIRROR=${FLEETFLOW_CHART_MIRROR:-$(cd .. && pwd)/shared/charts}
# Tests must not reach past loopback, and must not wait on the Prefect server they do not start.
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1

if [[ ${MUTATE_CLEAN:-0} == 1 ]]; then rm -rf mutants; fi
patterns=()
for module in "$@"; do patterns+=("${module}.*"); done

status=0
nice -n 10 "$BIN/mutmut" run --max-children "$CHILDREN" "${patterns[@]}" >mutants.log 2>&1 || status=$?
if [[ $status -ne 0 ]]; then
    tail -n 40 mutants.log >&2
    echo "mutmut run failed ($status); full output in mutants.log" >&2
    exit "$status"
fi
"$BIN/mutmut" results --all true 2>/dev/null | "$BIN/python" hack/mutation_score.py "$@"
