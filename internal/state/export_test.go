package state

import (
	"encoding/json"
	"io"

	"github.com/muster-registry/muster/api"
)

// Matches exposes the filter's rule to the external tests.
func (f *EventFilter) Matches(e *api.Event) bool { return f.match(e) }

// WriteJSONTo writes the snapshot as Muster wrote it before the binary
// format (version 1: a stream of JSON values), for the tests that check
// that Restore still reads it.
func (snap *Snapshot) WriteJSONTo(w io.Writer) error {
	snap.sort()
	enc := json.NewEncoder(w)
	h := snap.header
	h.Version = jsonSnapshotVersion
	if err := enc.Encode(h); err != nil {
		return err
	}
	for i := range snap.services {
		if err := enc.Encode(&snap.services[i]); err != nil {
			return err
		}
	}
	for i := range snap.events {
		if err := enc.Encode(&snap.events[i]); err != nil {
			return err
		}
	}
	return nil
}
