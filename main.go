package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitCode is returned by a command that has already said what went wrong
// and only needs the process to exit with code.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// run executes the command line args and returns the process exit status:
// 0 success, 1 failure, 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	default:
		fmt.Fprintf(stderr, "seakeeper: %v\nRun 'seakeeper --help' for usage.\n", err)
		return 2
	}
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "seakeeper",
		Short: "Seakeeper gates Gerrit changes: it tests them with Argo Workflows and merges what passes",
		// Errors are printed by run, usage only on request.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		versionCommand(stdout),
		checkConfigCommand(stdout, stderr),
		serveCommand(stderr),
		demoCommand(stdout, stderr),
		notYetCommand("simulate", "Simulate gate throughput with a virtual clock", 1, stderr),
	)
	return root
}
