#!/usr/bin/env bash
# Builds the solution and runs every test project, then prints the closing line "N passed, N failed"
# counted from the TRX results (MSTest's own console summary has another form). Extra arguments go to
# `dotnet test` (for example --filter "FullyQualifiedName~Quantizer").
set -uo pipefail
cd "$(dirname "$0")/.."
# MPICH for the MPI binding's tests (never fails: without it those tests report Inconclusive).
bash build/install-mpi.sh
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
dotnet test Cbp.sln -c Release --logger "trx" --results-directory "$results" "$@"
rc=$?
passed=0
failed=0
skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  e=$(sed -n 's/.* error="\([0-9]*\)".*/\1/p' <<<"$counters")
  # Inconclusive tests (GPU tests on a machine without a GPU) are counted as not executed: skipped.
  t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters")
  x=$(sed -n 's/.* executed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0}))
  skipped=$((skipped + ${t:-0} - ${x:-0}))
done
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # The build or the test host failed before any test could report: count that as a failure.
  failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$rc"
