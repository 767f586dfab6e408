package registry

import (
	"cmp"
	"slices"
	"time"

	"github.com/muster-registry/muster/api"
)

// URLClaim says that a passing instance serves Resource at PublicURL.
type URLClaim struct {
	Resource        string
	PublicURL       string
	Instance        string // "ns/service/id"
	DefaultRevision bool   // the instance runs its service's default revision
	RegisteredAt    time.Time
}

// BuildURLMap picks one public URL per resource. When claims disagree, the
// winner is deterministic: an instance of its service's default revision
// first, then the oldest registration, then the smallest instance name. Every
// disagreement is reported as a conflict, sorted by resource.
func BuildURLMap(claims []URLClaim) (map[string]string, []api.URLMapConflict) {
	slices.SortFunc(claims, func(a, b URLClaim) int {
		if a.Resource != b.Resource {
			return cmp.Compare(a.Resource, b.Resource)
		}
		if a.DefaultRevision != b.DefaultRevision {
			if a.DefaultRevision {
				return -1
			}
			return 1
		}
		return cmp.Or(a.RegisteredAt.Compare(b.RegisteredAt), cmp.Compare(a.Instance, b.Instance))
	})
	m := make(map[string]string)
	conflicts := []api.URLMapConflict{}
	for i := 0; i < len(claims); {
		j := i
		var urls []string
		for j < len(claims) && claims[j].Resource == claims[i].Resource {
			if !slices.Contains(urls, claims[j].PublicURL) {
				urls = append(urls, claims[j].PublicURL)
			}
			j++
		}
		m[claims[i].Resource] = claims[i].PublicURL
		if len(urls) > 1 {
			slices.Sort(urls)
			conflicts = append(conflicts, api.URLMapConflict{Resource: claims[i].Resource, Chosen: claims[i].PublicURL, ChosenFrom: claims[i].Instance, Candidates: urls})
		}
		i = j
	}
	return m, conflicts
}
