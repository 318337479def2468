-- Prosody 0.12 (Debian) for the load benchmarks in BENCHMARKS.md: bound to
-- loopback, STARTTLS required, SCRAM and PLAIN over TLS (Tsung can only do
-- PLAIN), open in-band registration from loopback, no rate limits (the
-- benchmark measures the load generators, not Prosody's throttles).
-- run.sh replaces @DIR@, @PORT@ and @DOMAIN@.
daemonize = false
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
plugin_paths = { "/usr/lib/prosody/modules" }
interfaces = { "127.0.0.1" }
c2s_ports = { @PORT@ }
c2s_direct_tls_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
admin_socket = "@DIR@/admin.sock"
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "register"; "offline"; "presence"; "message"; "iq" }
modules_disabled = { "s2s"; "limits"; "posix" }
ssl = { certificate = "@DIR@/cert.pem"; key = "@DIR@/key.pem"; protocol = "tlsv1_2+" }
c2s_require_encryption = true
authentication = "internal_hashed"
storage = "internal"
allow_registration = true
registration_throttle_max = 1000000
min_seconds_between_registrations = 0
log = { warn = "@DIR@/prosody.log" }
VirtualHost "@DOMAIN@"
