package host

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// HandlerFunc does an endpoint's work and returns its data: the page's
// content for a route, nothing in particular for a topic or a schedule.
// The request of a topic message or a cron run is made by the host; [CallOf]
// says which exposure reached the handler. An error that wraps an
// [*HTTPError] sets the status of an HTTP answer; any other error is a 500.
type HandlerFunc func(r *http.Request) (any, error)

// RenderFunc turns a handler's data into the body of an HTML or text page.
// The Content-Type is sniffed from the body (http.DetectContentType), so a
// body that starts with an HTML tag is served as text/html. It is not
// called for a client that asks for application/json: that client gets the
// data as JSON.
type RenderFunc func(r *http.Request, data any) (string, error)

// Service is one endpoint of the host: its name (unique in the host, and
// the endpoint's name in the registry), its handler, the backends it needs
// and how it is exposed.
type Service struct {
	// Name names the endpoint: 1-128 letters, digits or '_.-'.
	Name string
	// Handler does the work; it must be safe for concurrent use.
	Handler HandlerFunc
	// Backends are names of backends: keys of Options.Backends, or
	// registry services "ns/name[@constraint]", which the host follows with
	// a [Remote] backend when Options.Backends does not name them. Only the
	// registry services are written to the definition in Muster; local
	// resources are the host's business.
	Backends []string
	// Permissions are stored in the definition as they are; the host does
	// not enforce them.
	Permissions []string
	// Setup lists the exposures: [Web], [WebFallback], [Topic], [Cron].
	Setup []Exposure
}

// Exposure is one way an endpoint is reached. Build it with [Web],
// [WebFallback], [Topic] or [Cron].
type Exposure struct {
	// Type is one of api.ExposureHTTP, api.ExposureHTTPFallback,
	// api.ExposureTopic, api.ExposureCron.
	Type string
	// Method and Path select the requests of an HTTP route. Method is
	// GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or ANY; Path is a pattern
	// of plain segments and whole-segment {name} wildcards, whose values
	// the handler reads with r.PathValue.
	Method, Path string
	// Topic is the topic of a consumer (NATS subject syntax: '*' and '>').
	Topic string
	// Schedule is the cron spec of a schedule: five fields, or a
	// descriptor such as @every 1m or @daily.
	Schedule string
	// Render renders the data of an HTTP route or of the fallback; nil
	// answers JSON to every client.
	Render RenderFunc
}

// Web exposes an endpoint as the HTTP route method path.
func Web(method, path string, render RenderFunc) Exposure {
	return Exposure{Type: api.ExposureHTTP, Method: method, Path: path, Render: render}
}

// WebFallback exposes an endpoint as the answer to every HTTP request that
// no route matches. A host has at most one.
func WebFallback(render RenderFunc) Exposure {
	return Exposure{Type: api.ExposureHTTPFallback, Render: render}
}

// Topic exposes an endpoint as a consumer of the topic: the handler runs
// once per message, one message at a time, while the endpoint is enabled.
func Topic(name string) Exposure {
	return Exposure{Type: api.ExposureTopic, Topic: name}
}

// Cron exposes an endpoint as a schedule: the handler runs at each time
// of spec while the endpoint is enabled (a run still going when the next
// time comes makes that time be skipped).
func Cron(spec string) Exposure {
	return Exposure{Type: api.ExposureCron, Schedule: spec}
}

// key identifies an exposure across changes: two exposures with the same
// key are the same one, reconfigured in place (a new render function).
func (x Exposure) key() string {
	return x.Type + " " + x.Method + " " + x.Path + " " + x.Topic + " " + x.Schedule
}

// wire is the exposure as the registry stores it.
func (x Exposure) wire() api.Exposure {
	return api.Exposure{Type: x.Type, Method: x.Method, Path: x.Path, Topic: x.Topic, Schedule: x.Schedule}
}

// HTTPError is an error with the HTTP status it answers. Return one (or an
// error that wraps one) from a handler to answer, say, 404 or 400.
type HTTPError struct {
	Status  int
	Message string
}

// Error returns the message.
func (e *HTTPError) Error() string { return e.Message }

// Errorf returns an [*HTTPError] of status with a formatted message.
func Errorf(status int, format string, args ...any) error {
	return &HTTPError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Call says how a handler was reached. For an HTTP request Exposure is the
// route (or fallback) and Message is nil.
type Call struct {
	// Endpoint is the endpoint's name.
	Endpoint string
	// Exposure is the exposure that triggered the call.
	Exposure Exposure
	// Message is the topic message, for a topic consumer.
	Message *Message
	// Time is when the host made the call (the schedule's time for cron).
	Time time.Time
}

type callKey struct{}

// CallOf answers how the handler of r was reached; the zero Call for a
// request that does not come from a Host.
func CallOf(r *http.Request) Call {
	c, _ := r.Context().Value(callKey{}).(Call)
	return c
}

func withCall(ctx context.Context, c Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// ErrInvalidService is wrapped by the errors of Start and Apply for a set
// of services that cannot run.
var ErrInvalidService = errors.New("host: invalid services")

// isServiceRef reports whether a backend name is a registry service
// reference, written to the definition.
func isServiceRef(name string) bool {
	_, err := registry.ParseBackend(name)
	return err == nil
}

// definition translates services to the definition stored in Muster.
func definition(services []Service) api.Definition {
	def := api.Definition{Endpoints: make([]api.Endpoint, 0, len(services))}
	for _, s := range services {
		ep := api.Endpoint{Name: s.Name, Permissions: slices.Clone(s.Permissions)}
		for _, b := range s.Backends {
			if isServiceRef(b) {
				ep.Backends = append(ep.Backends, b)
			}
		}
		for _, x := range s.Setup {
			ep.Exposures = append(ep.Exposures, x.wire())
		}
		def.Endpoints = append(def.Endpoints, ep)
	}
	return def
}

// validate checks services as the registry would, plus what only the host
// knows: handlers and backend names.
func (h *Host) validate(services []Service) error {
	def := definition(services)
	if err := registry.ValidateDefinition(&def); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidService, err)
	}
	for _, s := range services {
		if s.Handler == nil {
			return fmt.Errorf("%w: endpoint %q has no handler", ErrInvalidService, s.Name)
		}
		for _, b := range s.Backends {
			if _, ok := h.opts.Backends[b]; ok {
				continue
			}
			if !isServiceRef(b) {
				return fmt.Errorf("%w: endpoint %q needs backend %q, which is neither in Options.Backends nor a service reference ns/name[@constraint]", ErrInvalidService, s.Name, b)
			}
			if h.opts.Client == nil {
				return fmt.Errorf("%w: endpoint %q needs registry service %q, but the host has no Client", ErrInvalidService, s.Name, b)
			}
		}
		for _, x := range s.Setup {
			if x.Type == api.ExposureTopic && h.opts.Broker == nil {
				return fmt.Errorf("%w: endpoint %q consumes topic %q, but the host has no Broker", ErrInvalidService, s.Name, x.Topic)
			}
		}
	}
	return nil
}
