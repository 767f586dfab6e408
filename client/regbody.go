package client

import (
	"maps"
	"slices"
	"strconv"

	"github.com/muster-registry/muster/api"
)

// registrationBody is json.Marshal(req), encoded by hand as heartbeat
// bodies are: the fields in their declared order, empty ones left out (all
// are omitempty), metadata keys sorted. ok is false, and the body is left
// to encoding/json, when a string is not plain. The server reads this form
// by hand too.
func registrationBody(req *api.RegisterInstanceRequest) (_ []byte, ok bool) {
	n := 160 + len(req.ID) + len(req.RevisionTag) + len(req.Address) + len(req.PublicURL)
	for _, s := range req.Endpoints {
		n += len(s) + 3
	}
	for _, s := range req.Tags {
		n += len(s) + 3
	}
	for k, v := range req.Metadata {
		n += len(k) + len(v) + 6
	}
	w := regWriter{b: make([]byte, 0, n), ok: true}
	w.text("id", req.ID)
	w.text("revision_tag", req.RevisionTag)
	w.text("address", req.Address)
	w.count("port", req.Port)
	w.text("public_url", req.PublicURL)
	w.texts("endpoints", req.Endpoints)
	w.texts("tags", req.Tags)
	w.pairs("metadata", req.Metadata)
	w.count("heartbeat_timeout", req.HeartbeatTimeout)
	if !w.ok {
		return nil, false
	}
	if len(w.b) == 0 {
		return append(w.b, "{}"...), true
	}
	w.b[0] = '{' // every field is written after a comma
	return append(w.b, '}'), true
}

// regWriter appends the fields of a registration body, each after a comma.
type regWriter struct {
	b  []byte
	ok bool // false from the first string that is not plain
}

func (w *regWriter) key(k string) {
	w.b = append(w.b, `,"`...)
	w.b = append(w.b, k...)
	w.b = append(w.b, `":`...)
}

func (w *regWriter) str(s string) {
	if w.ok {
		w.b, w.ok = appendPlain(w.b, s)
	}
}

func (w *regWriter) text(k, s string) {
	if s != "" {
		w.key(k)
		w.str(s)
	}
}

func (w *regWriter) count(k string, n int) {
	if n != 0 {
		w.key(k)
		w.b = strconv.AppendInt(w.b, int64(n), 10)
	}
}

func (w *regWriter) texts(k string, l []string) {
	if len(l) == 0 {
		return
	}
	w.key(k)
	sep := byte('[')
	for _, s := range l {
		w.b = append(w.b, sep)
		sep = ','
		w.str(s)
	}
	w.b = append(w.b, ']')
}

func (w *regWriter) pairs(k string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	w.key(k)
	sep := byte('{')
	for _, mk := range slices.Sorted(maps.Keys(m)) {
		w.b = append(w.b, sep)
		sep = ','
		w.str(mk)
		w.b = append(w.b, ':')
		w.str(m[mk])
	}
	w.b = append(w.b, '}')
}
