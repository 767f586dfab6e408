package registry

// The name rules are hand-written matchers rather than regular expressions:
// they run on every heartbeat (three names each, a thousand per batch), where
// a regexp match cost more than the lease check. TestNameMatchers holds each
// to its pattern:
//
//	label        ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$
//	revision tag ^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$
//	instance id  ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$

func isLower(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isLower(c) || 'A' <= c && c <= 'Z' }

// isLabel reports whether s is a DNS label: 1-63 lowercase letters, digits
// or '-', starting and ending with a letter or digit.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isLower(s[0]) || !isLower(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !isLower(c) && c != '-' {
			return false
		}
	}
	return true
}

// isTag reports whether s matches the revision tag pattern.
func isTag(s string) bool {
	if len(s) == 0 || len(s) > 128 || !isAlnum(s[0]) && s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

// isInstanceID reports whether s matches the instance id pattern.
func isInstanceID(s string) bool {
	if len(s) == 0 || len(s) > 128 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

// ValidateNamespace checks a namespace name: a DNS label of 1–63 characters.
func ValidateNamespace(ns string) error {
	if !isLabel(ns) {
		return Invalid("namespace", "%q must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit", ns)
	}
	return nil
}

// ValidateServiceName checks a service name: a DNS label of 1–63 characters.
func ValidateServiceName(name string) error {
	if !isLabel(name) {
		return Invalid("name", "%q must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// ValidateService checks both parts of a service reference.
func ValidateService(ns, name string) error {
	if err := ValidateNamespace(ns); err != nil {
		return err
	}
	return ValidateServiceName(name)
}

// ValidateRevisionTag checks a revision tag: 1–128 characters of letters,
// digits and "_.+-", not starting with '.', '+' or '-'.
func ValidateRevisionTag(tag string) error {
	if !isTag(tag) {
		return Invalid("revision_tag", "%q must be 1-128 characters of letters, digits and '_.+-', starting with a letter, digit or '_'", tag)
	}
	return nil
}

// ValidateInstanceID checks an instance id: 1–128 characters of letters,
// digits and "_.:-", starting with a letter or digit.
func ValidateInstanceID(id string) error {
	if !isInstanceID(id) {
		return Invalid("id", "%q must be 1-128 characters of letters, digits and '_.:-', starting with a letter or digit", id)
	}
	return nil
}
