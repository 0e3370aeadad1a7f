// Package broken builds normally; with the `broken` build tag it also
// compiles bad.go, which has a type error (the build-failure variant).
package broken

// Greeting says hello.
func Greeting(name string) string { return "hello, " + name }
