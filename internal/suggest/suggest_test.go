package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"delay", "delay", 0},
		{"dlay", "delay", 1},       // insertion
		{"delays", "delay", 1},     // deletion
		{"deley", "delay", 1},      // substitution
		{"dealy", "delay", 1},      // neighbours swapped
		{"attempts", "atempst", 2}, // deletion and swap
		{"max-dealy", "max-delay", 1},
		{"größe", "grösse", 2},
		{"abc", "", 3},
	} {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// The CLI's cases (from cmd/kretry, where the function was first written),
// both ways round.
func TestDistanceIsSymmetric(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"ab", "ba", 1}, {"max-dealy", "max-delay", 1}, {"dlt", "lag", 3}, {"héllo", "hello", 1},
	} {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Distance(tt.b, tt.a); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}
