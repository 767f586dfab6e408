// Package host is the runtime of an API host: it runs a service's endpoints
// (handlers with their backends and exposures) and keeps them in step with
// the service's definition in Muster.
//
// A [Service] is one endpoint: a handler that returns data, the backends it
// needs (by name), and how it is exposed: HTTP routes ([Web]) and the HTTP
// fallback ([WebFallback]) with a render function that turns the data into
// HTML or text (the same route answers JSON to a client that asks for
// application/json), topic consumers ([Topic]) and cron schedules ([Cron]).
//
// A [Host] runs a set of services. [Host.Start] and [Host.Apply] are one
// procedure: collect the backends the endpoints need, start the new ones,
// enable each endpoint as soon as all of its backends are ready (and disable
// it while one is not), shut down the exposures that went away (draining
// what is in flight), start the new ones, reconfigure the changed ones in
// place and leave the rest alone, then store the definition in Muster.
// Start also registers the instance, keeps it alive, and follows the
// service's definition in the registry: an edit made there (say, with the
// CLI) is applied the same way, for the endpoints whose handlers the host
// knows.
//
// A Host is an [http.Handler]: mount it on a server. It also answers
// GET /_muster/state with its [State] as JSON.
//
// Backends come in two built-in kinds: [Local] resources the host opens
// itself (a database pool, a broker connection) and [Remote] services of the
// registry, ready while Muster shows a passing instance of an acceptable
// revision ("acme/queue@^2"). Topics go through a [Broker]: [MemBroker] in
// process, or the NATS adapter in host/natsbroker.
package host
