#!/usr/bin/env bash
# pytest and the built-in scenario suite side by side (what `make test` runs after lint).
#
#   scripts/test-and-suite.sh VENV REPORTS LANES ALONE...
#
# The suite (every scenarios/*.yaml but the ALONE ones, split over LANES fresh
# stacks) runs in the background while pytest runs; its output goes to
# REPORTS/suite-<stamp>.log and is printed when both have ended. When NESTJS_SUITE
# names scenario files, they run after it in the same background job against a
# fresh stack whose payment API is the seed's NestJS service (--app nestjs). When
# BACKGROUND_TESTS names test paths, pytest runs them last in that job (with its own
# basetemp) and the foreground pytest leaves them out: the background job ends long
# before the foreground pytest, which is the critical path of `make test`. Then the
# ALONE scenarios run on their own: they read host-wide counters (the embedded
# instance's OOM-kill count is the host's), which pytest's OOM tests move.
# Exit 0 only if pytest, both suites and the ALONE scenarios all passed.
# pytest's temporary directories (tmp_path) live under a mktemp directory of this
# script's, removed when it ends, not in pytest's /tmp/pytest-of-<user>, which pytest
# keeps (its last 3 runs) on purpose: `make test` leaves nothing in /tmp (.ci/run checks).
# Ctrl-C or SIGTERM stops the suite too (it reverts its faults and stops its
# stacks); the suite's processes are ended by their own pid.
set -u
venv=$1 reports=$2 lanes=$3
shift 3
alone=("$@")
mkdir -p "$reports"
log="$reports/suite-$(date +%Y%m%d-%H%M%S).log"
together=()
for path in scenarios/*.yaml; do
    skip=0
    for a in "${alone[@]}"; do [ "$path" = "$a" ] && skip=1; done
    [ "$skip" = 1 ] || together+=("$path")
done
pytest_tmp="$(mktemp -d -t paychaos-pytest.XXXXXX)"
trap 'rm -rf "$pytest_tmp"' EXIT
started=$SECONDS
# The suite, then (NESTJS_SUITE: scenario paths) the same kind of run against the seed's
# NestJS service (--app nestjs), one after the other in one background job.
nest=(${NESTJS_SUITE:-})
bg_tests=(${BACKGROUND_TESTS:-})
fg_ignore=()
for t in "${bg_tests[@]}"; do fg_ignore+=("--ignore=$t"); done
run_suites() {
    local child rc=0
    trap '[ -n "${child:-}" ] && kill -INT "$child" 2>/dev/null; wait "${child:-}"; exit 130' TERM
    "$venv/bin/paychaos" run "${together[@]}" --fresh --lanes "$lanes" --no-progress \
        --reports-dir "$reports" & child=$!
    wait "$child" || rc=1
    if [ "${#nest[@]}" -gt 0 ]; then
        echo
        echo "== the NestJS service (--app nestjs): ${nest[*]}"
        "$venv/bin/paychaos" run "${nest[@]}" --app nestjs --fresh --lanes "$lanes" --no-progress \
            --reports-dir "$reports" & child=$!
        wait "$child" || rc=1
    fi
    if [ "${#bg_tests[@]}" -gt 0 ]; then
        echo
        echo "== pytest ${bg_tests[*]} (in this background job):"
        # a command started with & by a script ignores SIGINT; the tests send Ctrl-C to
        # the processes they start and expect its default meaning: restore it
        env --default-signal=INT "$venv/bin/pytest" -p no:cacheprovider --durations=10 \
            --basetemp "$pytest_tmp/basetemp-background" "${bg_tests[@]}" & child=$!
        wait "$child" || rc=1
    fi
    return "$rc"
}
run_suites >"$log" 2>&1 &
suite=$!
stop_suite() {
    kill -TERM "$suite" 2>/dev/null
    wait "$suite"
    exit 130
}
trap stop_suite INT TERM
echo "suite: ${#together[@]} scenarios in $lanes lanes, then ${#nest[@]} on the NestJS service${bg_tests:+, then pytest ${bg_tests[*]}}, running beside pytest (pid $suite, log $log)"
"$venv/bin/pytest" --durations=15 --basetemp "$pytest_tmp/basetemp" "${fg_ignore[@]}"
tests=$?
echo "pytest ended (exit $tests) after $(( SECONDS - started )) s; waiting for the suite ..."
wait "$suite"
suite_rc=$?
trap - INT TERM
echo "== the background job: the suite${nest:+, the NestJS suite}${bg_tests:+, pytest ${bg_tests[*]}} (exit $suite_rc), beside pytest:"
cat "$log"
alone_rc=0
if [ "${#alone[@]}" -gt 0 ]; then
    echo "== on their own (host-wide counters): ${alone[*]}"
    "$venv/bin/paychaos" run "${alone[@]}" --fresh --no-progress --reports-dir "$reports"
    alone_rc=$?
fi
echo "pytest, suite and the scenarios run alone took $(( SECONDS - started )) s"
[ "$tests" -eq 0 ] && [ "$suite_rc" -eq 0 ] && [ "$alone_rc" -eq 0 ]
