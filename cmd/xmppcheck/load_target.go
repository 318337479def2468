package main

import (
	"context"
	"fmt"
	"io"

	"github.com/xmppcheck/xmppcheck/loadgen"
)

// startEmbeddedForLoad starts the embedded reference server for a load run.
func startEmbeddedForLoad(ctx context.Context, log io.Writer) (loadgen.Target, func(), loadgen.Provisioner, error) {
	return loadgen.Target{}, nil, nil, fmt.Errorf("load: the embedded reference server is not available yet: give --server HOST:PORT")
}

// startLoadTarget starts the fixture container fixtures/targets/NAME.
func startLoadTarget(ctx context.Context, name string, log io.Writer) (loadgen.Target, func(), loadgen.Provisioner, error) {
	return loadgen.Target{}, nil, nil, fmt.Errorf("load: --target is not available yet: give --server HOST:PORT")
}
