// Command muster is Muster's single binary: the server (muster serve), the
// command-line tool and the load generator.
package main

import (
	"fmt"
	"os"

	"github.com/muster-registry/muster/server"
)

// version is the binary's version.
const version = server.Version

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "muster:", describe(err))
		os.Exit(1)
	}
}
