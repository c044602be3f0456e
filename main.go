// Command grconnect is a self-hosted dashboard that connects customers' GetResponse
// accounts over OAuth2 and keeps their tokens alive. See README.md; the commands live
// in services/infra/cli.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/grconnect/grconnect/services/infra/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.Run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil && !errors.Is(err, cli.ErrHelp) {
		fmt.Fprintln(os.Stderr, "grconnect:", err)
		os.Exit(1)
	}
}
