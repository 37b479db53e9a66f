package yamlstrict

import (
	"fmt"
	"strings"
)

// hint completes an "unknown key" message with the likely intended key, or
// the list of keys allowed at that place.
func hint(key string, known []string) string {
	if s := suggest(key, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(known) == 0 {
		return " (no keys are allowed here)"
	}
	return " (allowed here: " + strings.Join(known, ", ") + ")"
}

// suggest returns the known key closest to key: equal but for case or
// underscores, a prefix of it or it of one, or at most two edits away.
func suggest(key string, known []string) string {
	if len(key) > 64 {
		return ""
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	k := norm(key)
	best, bestDist := "", 3
	for _, c := range known {
		nc := norm(c)
		dist := editDistance(k, nc)
		if len(k) >= 3 && (strings.HasPrefix(nc, k) || strings.HasPrefix(k, nc)) && len(nc) >= 3 {
			dist = min(dist, 1)
		}
		if dist < bestDist && dist < len(k) {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
