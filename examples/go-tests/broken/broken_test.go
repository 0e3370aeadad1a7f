package broken

import "testing"

func TestGreeting(t *testing.T) {
	if got := Greeting("go"); got != "hello, go" {
		t.Fatalf("Greeting(go) = %q", got)
	}
}
