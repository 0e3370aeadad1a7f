package queue

import (
	"os"
	"testing"
)

func TestFIFO(t *testing.T) {
	var q Queue
	for i := 1; i <= 3; i++ {
		q.Push(i)
	}
	for want := 1; want <= 3; want++ {
		t.Run("pop", func(t *testing.T) {
			if got, ok := q.Pop(); !ok || got != want {
				t.Fatalf("Pop() = %d, %v; want %d", got, ok, want)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	var q Queue
	if _, ok := q.Pop(); ok || q.Len() != 0 {
		t.Fatal("an empty queue gave a value")
	}
}

func TestLarge(t *testing.T) {
	if os.Getenv("QUEUE_LARGE") == "" {
		t.Skip("set QUEUE_LARGE=1 to run")
	}
	var q Queue
	for i := 0; i < 100000; i++ {
		q.Push(i)
	}
	if q.Len() != 100000 {
		t.Fatalf("Len() = %d", q.Len())
	}
}
