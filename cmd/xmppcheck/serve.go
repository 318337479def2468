package main

import "github.com/spf13/cobra"

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "(not available yet)",
		RunE:  notAvailable("serve"),
	}
}
