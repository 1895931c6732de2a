#!/usr/bin/env bash
# fuzz.sh runs a fuzzing campaign over every fuzz target of the module.
#
#   deploy/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
#
# It finds every `func FuzzXxx(` in the module's *_test.go files (outside
# node_modules and testdata) and runs, one target at a time,
#
#   go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime <secs>s ./<pkg>
#
# printing one line per target: package, target, result (ok, CRASH or
# ERROR), executions, and the new interesting inputs the fuzzer added to its
# corpus (kept in the Go build cache, $(go env GOCACHE)/fuzz; not in the
# repository). A crasher is left where go writes it,
# <pkg>/testdata/fuzz/<FuzzXxx>/<hash>, and its path is printed: rerun it
# with `go test -run '^FuzzXxx/<hash>$' ./<pkg>`, and do not commit it until
# the bug is fixed (the seeds under testdata/fuzz run in every `go test`).
#
# Environment:
#   FUZZ_MATCH          only targets whose "<pkg> <name>" matches this
#                       extended regexp (e.g. 'buffer/disk' or 'FuzzParse$')
#   FUZZ_MINIMIZE_TIME  -fuzzminimizetime (default 10s; go's default of 60s
#                       per new input eats short campaigns)
#   FUZZ_PARALLEL       -parallel (default: GOMAXPROCS)
#   FUZZ_LIST=1         only print the targets, without fuzzing
#   FUZZ_LOG_DIR        where each target's full output goes (default: a
#                       new temporary directory, printed at the end)
#
# Exit status: 0 when every target ran clean, 1 when some target found a
# crash (or failed its seed corpus), 2 when some target could not run
# (build error, ...) and none crashed.
set -uo pipefail

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
	echo "usage: $0 [SECONDS_PER_TARGET]" >&2
	exit 2
fi
GO=${GO:-go}
cd "$(dirname "$0")/.." || exit 2
logdir=${FUZZ_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")}
mkdir -p "$logdir"

# Targets, as "<dir> <name>" lines, sorted.
targets=$(
	find . \( -name node_modules -o -name testdata -o -name .git \) -prune -o \
		-type f -name '*_test.go' -print |
		while read -r file; do
			dir=$(dirname "$file")
			grep -oE '^func Fuzz[A-Za-z0-9_]*\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(/\1/' |
				while read -r name; do echo "${dir#./} $name"; done
		done | sort -u
)
if [ -n "${FUZZ_MATCH:-}" ]; then
	targets=$(grep -E -- "$FUZZ_MATCH" <<<"$targets" || true)
fi
if [ -z "$targets" ]; then
	echo "no fuzz targets found" >&2
	exit 2
fi
n=$(wc -l <<<"$targets")
if [ "${FUZZ_LIST:-}" = 1 ]; then
	echo "$targets"
	exit 0
fi
echo "fuzzing $n targets for ${secs}s each (logs in $logdir)"

flags=(-run '^$' -fuzztime "${secs}s" -fuzzminimizetime "${FUZZ_MINIMIZE_TIME:-10s}" -timeout "$((secs + 900))s")
if [ -n "${FUZZ_PARALLEL:-}" ]; then
	flags+=(-parallel "$FUZZ_PARALLEL")
fi

crashes=() errors=()
printf '%-36s %-24s %-6s %12s %8s\n' PACKAGE TARGET RESULT EXECS NEW
while read -r dir name; do
	log="$logdir/${dir//\//_}.$name.log"
	start=$(date +%s)
	"$GO" test "${flags[@]}" -fuzz "^${name}\$" "./$dir" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	# The last progress line: "fuzz: elapsed: 1m0s, execs: 123 (45/sec), new interesting: 6 (total: 78)".
	progress=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$progress")
	new=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$progress")
	crasher=$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		result=ok
	elif [ -n "$crasher" ] || grep -qE '^(--- FAIL|panic:)' "$log"; then
		result=CRASH
		crashes+=("$dir $name")
	else
		result=ERROR
		errors+=("$dir $name")
	fi
	printf '%-36s %-24s %-6s %12s %8s  (%ss)\n' "$dir" "$name" "$result" "${execs:--}" "${new:--}" "$took"
	if [ "$result" = CRASH ]; then
		if [ -n "$crasher" ]; then
			echo "    crasher: $dir/$crasher"
			echo "    rerun:   $GO test -run '^$name/${crasher##*/}\$' ./$dir"
		fi
		grep -m 5 -E '^\s+\S+_test\.go:[0-9]+:|^panic:' "$log" | sed 's/^\s*/    /'
		echo "    log:     $log"
	elif [ "$result" = ERROR ]; then
		tail -n 5 "$log" | sed 's/^/    /'
		echo "    log:     $log"
	fi
done <<<"$targets"

echo "logs: $logdir"
if [ ${#crashes[@]} -gt 0 ]; then
	echo "${#crashes[@]} of $n targets crashed: ${crashes[*]}" >&2
	exit 1
fi
if [ ${#errors[@]} -gt 0 ]; then
	echo "${#errors[@]} of $n targets did not run: ${errors[*]}" >&2
	exit 2
fi
echo "all $n targets ran clean"
