// Package queue is a tiny FIFO queue.
package queue

// Queue is a FIFO of ints.
type Queue struct{ items []int }

// Push appends v.
func (q *Queue) Push(v int) { q.items = append(q.items, v) }

// Pop removes and returns the oldest value; ok is false when empty.
func (q *Queue) Pop() (v int, ok bool) {
	if len(q.items) == 0 {
		return 0, false
	}
	v, q.items = q.items[0], q.items[1:]
	return v, true
}

// Len is the number of queued values.
func (q *Queue) Len() int { return len(q.items) }
