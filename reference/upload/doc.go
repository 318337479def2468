// Package upload implements XEP-0363: HTTP File Upload for the reference
// server: the slot service answered over XMPP and the HTTPS endpoint that
// stores and serves the files.
//
// What it promises, and where the promise comes from:
//
//   - Slot URLs carry at least the policy's upload.unguessable-url entropy,
//     drawn from crypto/rand; nothing lists slots, unknown paths answer 404
//     and wrong methods 405 without looking anything up; the URL path is never
//     used to build a file name, so path traversal is impossible.
//   - A PUT must carry exactly the size and content type the slot was issued
//     for; a slot takes one upload.
//   - Files and their metadata are sealed at rest: every file has its own
//     random 128-bit key; the file is encrypted in fixed-size AES-GCM chunks under
//     that key, and the key, the owner, the file name and type are sealed by
//     the server's Sealer (the key file). The data directory holds neither
//     slot ids (only their SHA-256) nor plaintext.
//   - Files are purged at the policy's upload.retention age measured on the
//     server's Clock, and are gone with their owner's account (RemoveOwner).
//   - Downloads are served with X-Content-Type-Options: nosniff, a
//     restrictive Content-Security-Policy, and Content-Disposition:
//     attachment for everything but raster images.
//   - Per-user quota and XEP-0363 §4 errors (file-too-large, quota reached).
package upload
