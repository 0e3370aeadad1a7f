// Package mathx holds small integer helpers.
package mathx

// Add returns a + b.
func Add(a, b int) int { return a + b }

// Abs returns the absolute value of n.
func Abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
