# failed-tests.awk prints, from a `go test -v` log, the output of every test
# that failed: the lines from its "=== RUN" to its "--- FAIL" (at most 120
# per test, the last ones kept), so that a failure's messages reach the
# console however long the log. Used by .ci/run.
function flush(name,   i, from) {
	from = (n[name] > 120) ? n[name] - 119 : 1
	printf("\n----- output of %s (%d lines%s)\n", name, n[name], (n[name] > 120) ? ", last 120" : "")
	for (i = from; i <= n[name]; i++) print buf[name, i]
}
/^=== RUN   / { cur = $3; n[cur] = 0 }
/^=== (CONT|PAUSE|NAME)  / { cur = $3 }
cur != "" && !/helpers_test.go:[0-9]+: time=/ { buf[cur, ++n[cur]] = $0 }
/^ *--- FAIL: / { name = $3; if (name in n) { flush(name); delete n[name] } }
