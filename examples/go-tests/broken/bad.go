//go:build broken

package broken

// Count has a type error: a string is not an int.
func Count() int {
	return "three"
}
