package registry

import (
	"regexp"
)

var (
	labelRe      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	tagRe        = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$`)
	instanceIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)
)

// ValidateNamespace checks a namespace name: a DNS label of 1–63 characters.
func ValidateNamespace(ns string) error {
	if !labelRe.MatchString(ns) {
		return Invalid("namespace", "%q must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit", ns)
	}
	return nil
}

// ValidateServiceName checks a service name: a DNS label of 1–63 characters.
func ValidateServiceName(name string) error {
	if !labelRe.MatchString(name) {
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
	if !tagRe.MatchString(tag) {
		return Invalid("revision_tag", "%q must be 1-128 characters of letters, digits and '_.+-', starting with a letter, digit or '_'", tag)
	}
	return nil
}

// ValidateInstanceID checks an instance id: 1–128 characters of letters,
// digits and "_.:-", starting with a letter or digit.
func ValidateInstanceID(id string) error {
	if !instanceIDRe.MatchString(id) {
		return Invalid("id", "%q must be 1-128 characters of letters, digits and '_.:-', starting with a letter or digit", id)
	}
	return nil
}
