package state

import "github.com/muster-registry/muster/api"

// Matches exposes the filter's rule to the external tests.
func (f *EventFilter) Matches(e *api.Event) bool { return f.match(e) }
