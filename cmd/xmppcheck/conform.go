package main

import "github.com/spf13/cobra"

func newConformCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "conform",
		Short: "(not available yet)",
		RunE:  notAvailable("conform"),
	}
}
