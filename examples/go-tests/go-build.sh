# Sourced by the build task: every test binary of the module from ONE
# `go test ./...`, so dependencies shared by several packages are compiled
# once and go schedules the whole build itself (on Go 1.19, `go test -c`
# takes one package). `-exec go-collect.sh` keeps each binary instead of
# running it. Stdout is go's own `-json` events (a pass per package built),
# but Go 1.19 reports a package that does not build only as a text line,
# `FAIL PKG [build failed]`, with the compiler's messages on stderr under a
# `# PKG` line. Those are passed on to stderr (the job's log) and, once go
# is done, turned into events: per such package its messages as output,
# then a fail whose output says `[build failed]`, which stockade reports
# as an error, not as a test's failure.
#
# go removes its go-build* work directory on SIGINT (not on SIGTERM) once its
# handler is installed; the work directory is also made in a directory of
# this job's own that the shell removes as it exits, so a Ctrl-C at go's
# very start leaves nothing either.
mkdir -p "$GO_BUILD_DIR" || exit
GOTMPDIR=$(mktemp -d) || exit
export GOTMPDIR
trap 'rm -rf "$GOTMPDIR"' EXIT
trap 'exit 130' INT TERM
# -count=1: a result from go's test cache would not run the -exec program.
# -vet=off: as `go test -c`, a build without go vet's checks (on go-cmp,
# warm, vet was a quarter of the build); run `go vet` as a step if wanted.
# go is the shell's foreground command, its output in files: on a Ctrl-C the
# shell waits for go to remove its work directory before its own trap runs.
# go splits -exec's value at spaces: it names go-collect.sh alone, found on
# a PATH whose first entry is a directory of this job's own holding only it,
# so a module directory with spaces in its path works.
mkdir "$GOTMPDIR/exec" && ln -s "$GO_MODULE_DIR/go-collect.sh" "$GOTMPDIR/exec/" || exit
PATH="$GOTMPDIR/exec:$PATH" \
  go test -count=1 -vet=off -json $GO_TAGS -exec go-collect.sh ./... \
  > "$GOTMPDIR/stdout" 2> "$GOTMPDIR/stderr"
status=$?
cat "$GOTMPDIR/stderr" >&2
awk '
  function json(s) {
    gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s); gsub(/\n/, "\\n", s)
    gsub(/[[:cntrl:]]/, "?", s)
    return "\"" s "\""
  }
  function output(p, s) { printf "{\"Action\":\"output\",\"Package\":%s,\"Output\":%s}\n", json(p), json(s) }
  # the events of go pass through; its "FAIL PKG [build failed]" lines are kept
  FILENAME == ARGV[1] {
    if ($0 ~ /^FAIL\t[^ ]+ \[(build|setup) failed\]$/) {
      split($0, f, /[\t ]/); failed[++n] = f[2]; line[n] = $0; broke[f[2]] = 1
    } else print
    next
  }
  # "# PKG" or "# PKG [PKG.test]" heads the messages about a package
  /^# / { pkg = $2; if ($3 ~ /^\[.*\.test\]$/) pkg = substr($3, 2, length($3) - 7); next }
  pkg != "" { said[pkg] = said[pkg] $0 "\n" }
  END {
    for (p in said) if (!(p in broke)) others = others said[p]  # a dependency that broke
    for (i = 1; i <= n; i++) {
      p = failed[i]
      text = (p in said) ? said[p] : others
      m = split(text, lines, "\n")
      for (j = 1; j < m; j++) output(p, lines[j] "\n")
      output(p, line[i] "\n")
      printf "{\"Action\":\"fail\",\"Package\":%s}\n", json(p)
    }
  }
' "$GOTMPDIR/stdout" "$GOTMPDIR/stderr"
exit "$status"
