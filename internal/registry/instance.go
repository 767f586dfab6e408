package registry

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/muster-registry/muster/api"
)

// ValidateRegistration checks an instance registration body and fills in the
// default heartbeat timeout. The id is checked only when present.
func ValidateRegistration(r *api.RegisterInstanceRequest) error {
	if r.ID != "" {
		if err := ValidateInstanceID(r.ID); err != nil {
			return err
		}
	}
	if r.RevisionTag != "" {
		if err := ValidateRevisionTag(r.RevisionTag); err != nil {
			return err
		}
	}
	if len(r.Address) > api.MaxAddressLen || !utf8.ValidString(r.Address) || strings.ContainsAny(r.Address, " \t\r\n/") {
		return Invalid("address", "must be a host name or IP address of at most %d characters", api.MaxAddressLen)
	}
	if r.Port < 0 || r.Port > 65535 {
		return Invalid("port", "%d is out of range 0-65535", r.Port)
	}
	if err := ValidatePublicURL(r.PublicURL); err != nil {
		return err
	}
	if err := ValidateEndpoints(r.Endpoints); err != nil {
		return err
	}
	if err := ValidateTags(r.Tags); err != nil {
		return err
	}
	if err := ValidateMetadata("metadata", r.Metadata); err != nil {
		return err
	}
	if r.HeartbeatTimeout == 0 {
		r.HeartbeatTimeout = api.DefaultHeartbeatTimeout
	}
	return ValidateHeartbeatTimeout(r.HeartbeatTimeout)
}

// ValidatePatch checks an instance patch body.
func ValidatePatch(p *api.PatchInstanceRequest) error {
	if p.Tags != nil {
		if err := ValidateTags(*p.Tags); err != nil {
			return err
		}
	}
	if p.Metadata != nil {
		if err := ValidateMetadata("metadata", *p.Metadata); err != nil {
			return err
		}
	}
	if p.Endpoints != nil {
		if err := ValidateEndpoints(*p.Endpoints); err != nil {
			return err
		}
	}
	if p.PublicURL != nil {
		if err := ValidatePublicURL(*p.PublicURL); err != nil {
			return err
		}
	}
	if p.HeartbeatTimeout != nil {
		return ValidateHeartbeatTimeout(*p.HeartbeatTimeout)
	}
	return nil
}

// ValidateHeartbeatTimeout checks a heartbeat timeout in seconds (3–120).
func ValidateHeartbeatTimeout(s int) error {
	if s < api.MinHeartbeatTimeout || s > api.MaxHeartbeatTimeout {
		return Invalid("heartbeat_timeout", "%d is out of range %d-%d seconds", s, api.MinHeartbeatTimeout, api.MaxHeartbeatTimeout)
	}
	return nil
}

// ValidateTags checks a tag list: at most 32 tags of 1–64 characters, no duplicates.
func ValidateTags(tags []string) error {
	if len(tags) > api.MaxTags {
		return Invalid("tags", "%d tags is more than the limit of %d", len(tags), api.MaxTags)
	}
	seen := make(map[string]struct{}, len(tags))
	for i, t := range tags {
		if t == "" || len(t) > api.MaxTagLen || !utf8.ValidString(t) {
			return Invalid("tags", "tag %d must be 1-%d bytes of UTF-8", i, api.MaxTagLen)
		}
		if _, dup := seen[t]; dup {
			return Invalid("tags", "tag %q is repeated", t)
		}
		seen[t] = struct{}{}
	}
	return nil
}

// ValidateMetadata checks a metadata map: at most 64 pairs, keys of 1–128
// bytes, values of at most 1024 bytes, all UTF-8.
func ValidateMetadata(field string, md map[string]string) error {
	if len(md) > api.MaxMetadata {
		return Invalid(field, "%d pairs is more than the limit of %d", len(md), api.MaxMetadata)
	}
	for k, v := range md {
		if k == "" || len(k) > api.MaxMetadataKeyLen || !utf8.ValidString(k) {
			return Invalid(field, "key %q must be 1-%d bytes of UTF-8", k, api.MaxMetadataKeyLen)
		}
		if len(v) > api.MaxMetadataValueLen || !utf8.ValidString(v) {
			return Invalid(field, "value of %q must be at most %d bytes of UTF-8", k, api.MaxMetadataValueLen)
		}
	}
	return nil
}

// ValidateEndpoints checks the resources an instance serves: at most 256
// distinct names of 1–256 printable characters.
func ValidateEndpoints(eps []string) error {
	if len(eps) > api.MaxEndpoints {
		return Invalid("endpoints", "%d endpoints is more than the limit of %d", len(eps), api.MaxEndpoints)
	}
	seen := make(map[string]struct{}, len(eps))
	for i, e := range eps {
		if e == "" || len(e) > api.MaxEndpointLen || !utf8.ValidString(e) || strings.ContainsAny(e, " \t\r\n") {
			return Invalid("endpoints", "endpoint %d must be 1-%d characters without spaces", i, api.MaxEndpointLen)
		}
		if _, dup := seen[e]; dup {
			return Invalid("endpoints", "endpoint %q is repeated", e)
		}
		seen[e] = struct{}{}
	}
	return nil
}

// ValidatePublicURL checks an optional public URL: absolute http or https.
func ValidatePublicURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > api.MaxPublicURLLen {
		return Invalid("public_url", "must be at most %d characters", api.MaxPublicURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Invalid("public_url", "%q must be an absolute http or https URL", s)
	}
	return nil
}
