# Sourced by the discover task. Prints, as one JSON object, the module's
# packages that have tests ("lines"); per package, a SHA-256 over what its
# test binary is built from ("inputs"): the names and contents of its files
# and of every non-standard package it depends on (tests included), go.mod,
# go.sum, and the Go version; per package its directory ("dirs"); and the
# flag that makes a test binary print its events ("test_v"). The pipeline's
# build and test steps declare the digest as their `inputs:`, so a rerun
# rebuilds what changed.
#
# One `go list -deps -test` over the module gives every package with its
# files and (for each package's test main, `PKG.test`) everything the test
# binary is built from; each file is hashed once.
tab=$(printf '\t')
with_tests="{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}$tab{{.Dir}}{{end}}"
files="{{if not .Standard}}P$tab{{.ImportPath}}
{{\$d := .Dir}}{{range .GoFiles}}F$tab{{\$d}}/{{.}}
{{end}}{{range .CgoFiles}}F$tab{{\$d}}/{{.}}
{{end}}{{range .TestGoFiles}}F$tab{{\$d}}/{{.}}
{{end}}{{range .XTestGoFiles}}F$tab{{\$d}}/{{.}}
{{end}}{{range .EmbedFiles}}F$tab{{\$d}}/{{.}}
{{end}}{{range .Deps}}D$tab{{.}}
{{end}}{{end}}"
work=$(mktemp -d) || exit
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM # so that a stopped discovery also removes it
go list $GO_TAGS -f "$with_tests" ./... > "$work/all" || exit
sed '/^$/d' "$work/all" > "$work/packages" || exit
go list $GO_TAGS -deps -test -f "$files" ./... > "$work/list" || exit
version=$(go version) || exit
case "$(go env GOVERSION)" in
go1.1[0-9] | go1.1[0-9].* | go1.[0-9] | go1.[0-9].*) test_v=-test.v ;;
*) test_v=-test.v=test2json ;;
esac
# "PKG<tab>FILE" for every file each package's test binary is built from
# (the generated test main itself, in the build cache, is left out)
awk -F "$tab" '
  NR == FNR { if ($1 != "") want[$1 ".test"] = $1; next }
  $1 == "P" { cur = $2; next }
  $1 == "F" { if (cur !~ /\.test$/) files[cur] = files[cur] $2 "\n"; next }
  $1 == "D" { if (cur in want) deps[cur] = deps[cur] $2 "\n"; next }
  END {
    for (main in want) {
      n = split(deps[main], list, "\n")
      for (i = 1; i <= n; i++) {
        m = split(files[list[i]], names, "\n")
        for (j = 1; j <= m; j++) if (names[j] != "") print want[main] "\t" names[j]
      }
    }
  }
' "$work/packages" "$work/list" | sort -u > "$work/pairs" || exit
cut -f2 "$work/pairs" | sort -u | tr '\n' '\0' | xargs -0 -r sha256sum > "$work/hashes" || exit
printf '{"test_v": "%s", "lines": [' "$test_v"
sep=""
while IFS="$tab" read -r package dir; do
  printf '%s"%s"' "$sep" "$package"
  sep=", "
done < "$work/packages"
printf '], "dirs": {'
sep=""
while IFS="$tab" read -r package dir; do
  printf '%s"%s": "%s"' "$sep" "$package" "$dir"
  sep=", "
done < "$work/packages"
printf '}, "inputs": {'
sep=""
while IFS="$tab" read -r package dir; do
  digest=$(
    {
      printf '%s\n' "$version"
      cat go.mod go.sum 2>/dev/null
      # each file's name and the hash of its content, in name order
      awk -v p="$package" -F "$tab" '
        NR == FNR { hash[substr($0, 67)] = substr($0, 1, 64); next }
        $1 == p { print $2 " " hash[$2] }
      ' "$work/hashes" "$work/pairs"
    } | sha256sum
  ) || exit
  printf '%s"%s": "%s"' "$sep" "$package" "${digest%% *}"
  sep=", "
done < "$work/packages"
printf '}}\n'
