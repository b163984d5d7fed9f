// Package suggest measures how far a mistyped name is from the names that
// were meant, for the "did you mean …?" of policy files, struct tags and
// the CLI. Each caller decides how close is close enough.
package suggest

// Distance is the optimal string alignment distance between a and b: the
// fewest single-letter insertions, deletions, substitutions and swaps of
// two neighbouring letters that turn a into b. It compares runes as they
// are; callers fold case first if case should not count.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
