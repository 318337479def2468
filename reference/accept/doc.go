// Package accept keeps the reference server's listeners alive under abuse:
// a guarded listener retries temporary accept errors (EMFILE, ENFILE,
// ENOBUFS, ECONNABORTED, …) with a capped exponential backoff and logs once
// per burst, refuses connections over a per-address cap (an IPv4 address,
// or the /64 of an IPv6 address) and over a shared budget of
// unauthenticated connections, so that descriptors stay in reserve for
// authenticated sessions and the admin socket. Any other accept error is
// returned: the listener is dead and the server must stop loudly.
package accept
