// Package target reads target files — the YAML description of an XMPP
// server (RFC 6120) in a container (fixtures/targets/NAME/target.yaml or a
// user's own; format in CONTRIBUTING.md) — and runs the server one
// describes: it builds the image (dockerenv.BuildImage), starts the
// container with testcontainers-go with its ports published on 127.0.0.1
// only, waits until it is ready, creates and deletes accounts by exec in
// the container (or by XEP-0077 in-band registration), and terminates it.
// The conformance suite (conformance/target) and the load generator
// (xmppcheck load --target) both start their container targets with it;
// what each does with a running server — evidence, clock, load — stays in
// its own package.
//
//	f, err := target.LoadFile("fixtures/targets/reference/target.yaml")
//	c, err := target.Start(ctx, f, target.WithBuildLog(os.Stderr))
//	defer c.Close(context.WithoutCancel(ctx))
//	err = c.CreateAccount(ctx, "alice", "secret")
//	addr := c.Addrs().C2S // 127.0.0.1:PORT
//
// Every process that uses it calls dockerenv.Setup (Start does), so
// testcontainers-go runs without Ryuk and never guesses a Docker host.
package target
