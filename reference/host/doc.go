// Package host is the extension interface of the reference server: what a
// component built apart from the c2s core (s2s federation, HTTP File Upload)
// may register with the server and call on it. It implements no protocol
// itself; RFC 6120 §8 (stanza errors) and XEP-0030 (service discovery) name
// the shapes it carries.
//
// A component receives a Host when the server starts it (see Component), and
// may then:
//
//   - answer IQ requests by payload namespace, addressed to the server's
//     domain, to a service JID of its own (upload.example.org) or to an
//     account (HandleIQ, HandleAccountIQ);
//   - add disco#info features and identities and disco#items (AddFeature,
//     AddIdentity, AddItem);
//   - route stanzas addressed to other domains (SetRemote) and hand stanzas
//     received from other servers to local delivery (DeliverRemote);
//   - keep sealed records in the store (Store().Bucket; RegisterOwned makes
//     them part of an account, erased with it);
//   - schedule purges on the server's clock (Every), which the test clock
//     drives in tests;
//   - act when an account is removed (OnAccountRemoved).
package host
