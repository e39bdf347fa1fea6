package eventuate

import (
	"slices"
	"unicode/utf16"
)

// javaOrder returns the names in the order in which a java.util.HashMap
// holding them iterates, as Jackson writes such a map: Eventuate keeps
// headers in HashMaps (MessageImpl, EventuateCommonJdbcOperations), so
// the headers of the envelopes and rows it writes come in this order. The
// map is taken as built by putting the names in sorted order into a new
// HashMap: a table of 16 buckets, doubled whenever the entries exceed
// three quarters of it; a name's bucket is its String.hashCode spread as
// HashMap.hash does (h ^ h>>>16) and masked by the table size, buckets
// iterate in index order and the names of one bucket in the order they
// were put. (A map Java built otherwise, e.g. by copying a small map,
// may have a smaller table; readers of JSON do not depend on the order.)
func javaOrder(names []string) []string {
	slices.Sort(names)
	size := uint32(16)
	for uint32(len(names)) > size/4*3 {
		size *= 2
	}
	type entry struct {
		bucket uint32
		at     int
	}
	entries := make([]entry, len(names))
	for i, n := range names {
		h := javaStringHash(n)
		entries[i] = entry{bucket: (h ^ h>>16) & (size - 1), at: i}
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return int(a.bucket) - int(b.bucket) })
	out := make([]string, len(names))
	for i, e := range entries {
		out[i] = names[e.at]
	}
	return out
}

// javaStringHash is java.lang.String.hashCode: s[0]*31^(n-1) + ... +
// s[n-1] over the UTF-16 code units of s, in 32-bit arithmetic.
func javaStringHash(s string) uint32 {
	var h uint32
	for _, r := range s {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			h = 31*h + uint32(r1)
			h = 31*h + uint32(r2)
			continue
		}
		h = 31*h + uint32(r)
	}
	return h
}
