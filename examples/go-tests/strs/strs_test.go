package strs

import "testing"

func TestReverseASCII(t *testing.T) {
	if got := Reverse("stockade"); got != "edakcots" {
		t.Fatalf("Reverse(stockade) = %q", got)
	}
}

func TestReverseUnicode(t *testing.T) {
	if got := Reverse("héllo"); got != "olléh" {
		t.Errorf("Reverse(héllo) = %q, want %q", got, "olléh")
	}
}
