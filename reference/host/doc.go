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
//     domain or to a service JID of its own such as upload.example.org
//     (HandleIQ, AddService);
//   - add an item to the domain's disco#items (AddItem);
//   - route stanzas addressed to other domains (SetRemote) and hand stanzas
//     received from other servers to local delivery (DeliverRemote);
//   - schedule purges on the server's clock (Every), which the test clock
//     drives in tests;
//   - act when an account is removed (OnAccountRemoved);
//   - bind listeners guarded as the server's own are (Listen), and take the
//     server down when one dies (Fail).
//
// Host is only as wide as its callers need; settings that belong to one
// component alone are given to that component's constructor as options.
package host
