// Package strs holds string helpers; Reverse has a bug the tests catch.
package strs

// Reverse reverses s byte by byte (wrong for multi-byte runes).
func Reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
