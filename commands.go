package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/seakeeper-ci/seakeeper/scheduler"
)

func versionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of seakeeper and of the Go toolchain that built it",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(stdout, "seakeeper %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

func checkConfigCommand(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "check-config FILE",
		Short: "Check a main configuration file and report every problem as file:line: message",
		Long: `check-config reads a main configuration file the way the daemon does and
reports every problem at once, one per line as "file:line: path: message",
sorted by line. It exits 0 when the file is valid and 1 otherwise. It reads
nothing but FILE: the key and password files it names are not opened.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := scheduler.LoadConfig(args[0])
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitCode(1)
			}
			fmt.Fprintf(stdout, "%s: ok: %d pipelines, %d shared queues\n", args[0], len(c.Pipelines), len(c.Queues))
			return nil
		},
	}
}

// notYetCommand is a command whose implementation arrives with a later
// issue; it exits with code.
func notYetCommand(name, short string, code int, out io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short + " (not yet implemented)",
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(out, "not yet: arrives with a later issue")
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}
