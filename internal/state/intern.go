package state

import "encoding/binary"

// internLimit bounds each table of an interner. A table that reaches it is
// emptied and fills again: strings already shared stay shared, and a stream
// of strings that never repeat (made-up tags, unique metadata values) costs
// a bounded amount of memory instead of growing for ever.
const internLimit = 1 << 16

// maxInternedValue is the longest metadata value that is interned: longer
// ones (up to 1 KiB each) seldom repeat, and would make the table's worst
// case 64 MiB instead of 4.
const maxInternedValue = 64

// interner makes equal strings that many instances carry (names, revision
// tags, tags, metadata keys and values) share one copy, and equal tag lists
// share one slice. It only changes which copy of a value a record points to,
// never a value, so apply stays deterministic whatever the table holds.
//
// Concurrency: used under the Store's write lock only.
type interner struct {
	strs map[string]string
	tags map[string][]string
	key  []byte // scratch for the tag-list key
}

func newInterner() *interner {
	return &interner{strs: make(map[string]string), tags: make(map[string][]string)}
}

// str returns the shared copy of s.
func (in *interner) str(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := in.strs[s]; ok {
		return c
	}
	if len(in.strs) >= internLimit {
		clear(in.strs)
	}
	in.strs[s] = s
	return s
}

// strBytes returns the shared copy of string(b), allocating only when b
// is new.
func (in *interner) strBytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if c, ok := in.strs[string(b)]; ok { // no allocation for the lookup
		return c
	}
	return in.str(string(b))
}

// tagList returns a shared slice equal to tags (nil stays nil, empty stays
// empty). tags itself is not modified: the caller may still hold it.
func (in *interner) tagList(tags []string) []string {
	if len(tags) == 0 {
		return tags
	}
	k := in.key[:0]
	for _, t := range tags {
		k = binary.AppendUvarint(k, uint64(len(t))) // length-prefixed: the key is unambiguous
		k = append(k, t...)
	}
	in.key = k
	if c, ok := in.tags[string(k)]; ok {
		return c
	}
	if len(in.tags) >= internLimit {
		clear(in.tags)
	}
	c := make([]string, len(tags))
	for i, t := range tags {
		c[i] = in.str(t)
	}
	in.tags[string(k)] = c
	return c
}

// metadata replaces md's strings by their shared copies, in place: md must
// be owned by the record being stored.
func (in *interner) metadata(md Metadata) {
	for i := range md {
		md[i].Key = in.str(md[i].Key)
		if len(md[i].Value) <= maxInternedValue {
			md[i].Value = in.str(md[i].Value)
		}
	}
}

// instance makes inst, which is about to be stored and is owned by the
// Store from now on, share the strings and tag lists that other records
// already hold.
func (in *interner) instance(inst *Instance) {
	inst.Namespace = in.str(inst.Namespace)
	inst.Service = in.str(inst.Service)
	inst.RevisionTag = in.str(inst.RevisionTag)
	inst.Tags = in.tagList(inst.Tags)
	in.metadata(inst.Metadata)
}
