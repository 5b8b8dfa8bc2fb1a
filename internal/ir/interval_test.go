package ir

import (
	"reflect"
	"testing"
)

func TestNormalizeAndSubtract(t *testing.T) {
	n := Normalize([]Interval{{10, 20}, {0, 5}, {6, 8}, {21, 21}, {15, 30}, {MaxUID, MaxUID}})
	want := []Interval{{0, 8}, {10, 30}, {MaxUID, MaxUID}}
	if !reflect.DeepEqual(n, want) {
		t.Fatalf("Normalize = %v, want %v", n, want)
	}
	got := Subtract([]Interval{{0, MaxUID}}, []Interval{{0, 0}, {1000, 1999}, {MaxUID, MaxUID}})
	want = []Interval{{1, 999}, {2000, MaxUID - 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Subtract = %v, want %v", got, want)
	}
	if got := Subtract([]Interval{{5, 10}}, []Interval{{0, 20}}); len(got) != 0 {
		t.Errorf("everything subtracted: %v", got)
	}
	for uid, in := range map[uint32]bool{0: true, 8: true, 9: false, 30: true, 31: false, MaxUID: true} {
		if ContainsUID(n, uid) != in {
			t.Errorf("ContainsUID(%d) = %v", uid, !in)
		}
	}
}

func TestProfileOf(t *testing.T) {
	d := Dispatch{UIDs: []UIDRange{{0, 0, 1}, {1, 999, -1}, {1000, 1000, 0}, {1001, MaxUID, 2}}}
	for uid, want := range map[uint32]int{0: 1, 5: -1, 1000: 0, 1001: 2, MaxUID: 2} {
		if got := d.ProfileOf(uid); got != want {
			t.Errorf("ProfileOf(%d) = %d, want %d", uid, got, want)
		}
	}
}
