# Sourced by the discover task. Prints, as one JSON object, the module's
# packages that have tests ("lines") and, per package, a SHA-256 over what
# its test binary is built from ("inputs"): the names and contents of its
# files and of every non-standard package it depends on (tests included),
# go.mod, go.sum, and the Go version. The pipeline's build and test steps
# declare it as their `inputs:`, so a rerun rebuilds what changed.
with_tests='{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}'
files='{{if not .Standard}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .CgoFiles}}{{$d}}/{{.}}
{{end}}{{range .TestGoFiles}}{{$d}}/{{.}}
{{end}}{{range .XTestGoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}'
packages=$(go list $GO_TAGS -f "$with_tests" ./...) || exit
version=$(go version) || exit
printf '{"lines": ['
sep=""
for package in $packages; do
  printf '%s"%s"' "$sep" "$package"
  sep=", "
done
printf '], "inputs": {'
sep=""
for package in $packages; do
  digest=$(
    {
      printf '%s\n' "$version"
      cat go.mod go.sum 2>/dev/null
      go list $GO_TAGS -deps -test -f "$files" "$package" | sort -u | while IFS= read -r file; do
        case $file in
          "" | *//*) ;; # none; the generated test main (an absolute name in the build cache)
          *) printf '%s\n' "$file" && cat "$file" ;;
        esac
      done
    } | sha256sum
  ) || exit
  printf '%s"%s": "%s"' "$sep" "$package" "${digest%% *}"
  sep=", "
done
printf '}}\n'
