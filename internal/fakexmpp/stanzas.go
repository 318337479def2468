package fakexmpp

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

func bareOf(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

func localOf(j string) string {
	b := bareOf(j)
	if i := strings.IndexByte(b, '@'); i >= 0 {
		return b[:i]
	}
	return ""
}

func (ss *session) errorIQ(e *elem, typ, cond string) {
	ss.write("<iq type='error' id='" + xmlEscape(e.attr("id")) + "'><error type='" + typ + "'><" + cond + " xmlns='" + ns.StanzaErrors + "'/></error></iq>")
}

func (ss *session) resultIQ(e *elem, inner string) {
	from := ""
	if f := e.attr("to"); f != "" {
		from = " from='" + xmlEscape(f) + "'"
	}
	ss.write("<iq type='result' id='" + xmlEscape(e.attr("id")) + "'" + from + ">" + inner + "</iq>")
}

// iq handles an iq stanza; false ends the connection.
func (ss *session) iq(e *elem) bool {
	s := ss.srv
	typ := e.attr("type")
	to := e.attr("to")
	q := e.first()
	if typ == "result" || typ == "error" {
		return true
	}
	if q == nil {
		ss.errorIQ(e, "modify", "bad-request")
		return true
	}
	if ss.iqFault(e, q) {
		return true
	}
	space := q.XMLName.Space
	// Before binding, only registration and binding.
	if ss.jid == "" {
		switch {
		case space == ns.Register && ss.user == "":
			if !ss.secure && s.requireTLS {
				ss.errorIQ(e, "cancel", "not-allowed")
				return true
			}
			ss.register(e, q)
		case space == ns.Bind && ss.user != "":
			res := ""
			if r := q.find("resource"); r != nil {
				res = strings.TrimSpace(r.Text)
			}
			if res == "" {
				b := make([]byte, 6)
				rand.Read(b)
				res = hex.EncodeToString(b)
			}
			ss.jid = ss.bare() + "/" + res
			s.mu.Lock()
			if old := s.sessions[ss.jid]; old != nil {
				old.conn.Close()
			}
			s.sessions[ss.jid] = ss
			s.mu.Unlock()
			ss.resultIQ(e, "<bind xmlns='"+ns.Bind+"'><jid>"+xmlEscape(ss.jid)+"</jid></bind>")
		default:
			ss.errorIQ(e, "auth", "not-authorized")
		}
		return true
	}
	toUpload := to == "upload."+s.domain
	toServer := to == "" || to == s.domain || to == ss.bare()
	switch {
	case space == ns.Session:
		ss.resultIQ(e, "")
	case space == ns.Ping && (toServer || toUpload):
		ss.resultIQ(e, "")
	case space == ns.Register && toServer && typ == "set":
		if q.find("remove") != nil {
			s.mu.Lock()
			delete(s.users, ss.user)
			s.mu.Unlock()
			ss.resultIQ(e, "")
			ss.write("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
			ss.done = true
			return false
		}
		if p := q.find("password"); p != nil {
			na, _ := s.newAccount(p.Text)
			s.mu.Lock()
			if a := s.users[ss.user]; a != nil {
				a.password, a.creds = na.password, na.creds
			}
			s.mu.Unlock()
			ss.resultIQ(e, "")
			return true
		}
		ss.errorIQ(e, "modify", "bad-request")
	case space == ns.Register && toServer && typ == "get":
		ss.resultIQ(e, "<query xmlns='"+ns.Register+"'><registered/><username>"+xmlEscape(ss.user)+"</username><password/></query>")
	case space == ns.Roster && toServer:
		ss.roster(e, q, typ)
	case space == ns.VCard:
		target := ss.user
		if to != "" && to != s.domain {
			target = localOf(to)
		}
		if typ == "set" {
			if target != ss.user {
				ss.errorIQ(e, "auth", "forbidden")
				return true
			}
			s.mu.Lock()
			s.users[ss.user].vcard = q.Inner
			s.mu.Unlock()
			ss.resultIQ(e, "")
			return true
		}
		s.mu.Lock()
		a := s.users[target]
		vc := ""
		if a != nil {
			vc = a.vcard
		}
		s.mu.Unlock()
		if a == nil {
			ss.errorIQ(e, "cancel", "item-not-found")
			return true
		}
		ss.resultIQ(e, "<vCard xmlns='vcard-temp'>"+vc+"</vCard>")
	case space == ns.DiscoInfo && (toServer || toUpload):
		if toUpload {
			ss.resultIQ(e, "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='store' type='file' name='Upload'/><feature var='urn:xmpp:http:upload:0'/></query>")
			return true
		}
		ss.resultIQ(e, "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='server' type='im' name='fakexmpp'/>"+
			"<feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/>"+
			"<feature var='jabber:iq:register'/><feature var='vcard-temp'/><feature var='urn:xmpp:ping'/><feature var='jabber:iq:last'/></query>")
	case space == ns.DiscoItems && toServer:
		ss.resultIQ(e, "<query xmlns='http://jabber.org/protocol/disco#items'><item jid='upload."+s.domain+"' name='HTTP upload'/></query>")
	case space == ns.Last:
		if toServer && to != ss.bare() {
			ss.resultIQ(e, "<query xmlns='jabber:iq:last' seconds='"+strconv.Itoa(int(time.Since(s.start).Seconds()))+"'/>")
			return true
		}
		s.mu.Lock()
		a := s.users[localOf(to)]
		var secs int
		if a != nil && !a.lastOut.IsZero() {
			secs = int(time.Since(a.lastOut).Seconds())
		}
		s.mu.Unlock()
		if a == nil {
			ss.errorIQ(e, "cancel", "item-not-found")
			return true
		}
		ss.resultIQ(e, "<query xmlns='jabber:iq:last' seconds='"+strconv.Itoa(secs)+"'/>")
	case space == ns.Upload && toUpload:
		b := make([]byte, 16)
		rand.Read(b)
		name := xmlEscape(attr(q.Attrs, "filename"))
		u := "https://upload." + s.domain + "/" + hex.EncodeToString(b) + "/" + name
		ss.resultIQ(e, "<slot xmlns='urn:xmpp:http:upload:0'><put url='"+u+"'><header name='Authorization'>Basic x</header></put><get url='"+u+"'/></slot>")
	default:
		if typ == "get" || typ == "set" {
			ss.errorIQ(e, "cancel", "service-unavailable")
		}
	}
	return true
}

func (ss *session) register(e *elem, q *child) {
	s := ss.srv
	if e.attr("type") == "get" {
		if s.dataForm {
			ss.resultIQ(e, "<query xmlns='"+ns.Register+"'><instructions>Use the form.</instructions><x xmlns='jabber:x:data' type='form'>"+
				"<field type='hidden' var='FORM_TYPE'><value>jabber:iq:register</value></field>"+
				"<field type='text-single' var='username' label='Username'><required/></field>"+
				"<field type='text-private' var='password' label='Password'><required/></field>"+
				"<field type='text-single' var='email' label='Email'/></x></query>")
			return
		}
		ss.resultIQ(e, "<query xmlns='"+ns.Register+"'><instructions>Choose a username and password.</instructions><username/><password/><email/></query>")
		return
	}
	var user, pass string
	if x := q.find("x"); x != nil {
		for _, f := range x.Children {
			v := ""
			if val := f.find("value"); val != nil {
				v = val.Text
			}
			switch attr(f.Attrs, "var") {
			case "username":
				user = v
			case "password":
				pass = v
			}
		}
	} else {
		if u := q.find("username"); u != nil {
			user = strings.TrimSpace(u.Text)
		}
		if p := q.find("password"); p != nil {
			pass = p.Text
		}
	}
	if user == "" || pass == "" {
		ss.errorIQ(e, "modify", "not-acceptable")
		return
	}
	if ss.registrationRefused(e) {
		return
	}
	s.mu.Lock()
	exists := s.users[user] != nil
	s.mu.Unlock()
	if exists {
		ss.errorIQ(e, "cancel", "conflict")
		return
	}
	if err := s.AddUser(user, pass); err != nil {
		ss.errorIQ(e, "wait", "internal-server-error")
		return
	}
	ss.resultIQ(e, "")
}

func rosterItemXML(it *rosterItem) string {
	x := "<item jid='" + xmlEscape(it.jid) + "' subscription='" + it.sub + "'"
	if it.name != "" {
		x += " name='" + xmlEscape(it.name) + "'"
	}
	if it.ask != "" {
		x += " ask='" + it.ask + "'"
	}
	x += ">"
	for _, g := range it.groups {
		x += "<group>" + xmlEscape(g) + "</group>"
	}
	return x + "</item>"
}

// pushRoster sends a roster push to user's sessions (RFC 6121 §2.1.6).
// Caller holds s.mu.
func (s *Server) pushRosterLocked(user string, it *rosterItem) {
	for _, o := range s.sessions {
		if o.user == user {
			o.write("<iq type='set' id='push" + strconv.FormatInt(time.Now().UnixNano(), 36) + "'><query xmlns='" + ns.Roster + "'>" + rosterItemXML(it) + "</query></iq>")
		}
	}
}

func (ss *session) roster(e *elem, q *child, typ string) {
	s := ss.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.users[ss.user]
	if a == nil {
		ss.errorIQ(e, "auth", "not-authorized")
		return
	}
	if typ == "get" {
		var b strings.Builder
		b.WriteString("<query xmlns='" + ns.Roster + "'>")
		for _, it := range a.roster {
			b.WriteString(rosterItemXML(it))
		}
		b.WriteString("</query>")
		ss.resultIQ(e, b.String())
		return
	}
	item := q.find("item")
	if item == nil {
		ss.errorIQ(e, "modify", "bad-request")
		return
	}
	j := bareOf(attr(item.Attrs, "jid"))
	if attr(item.Attrs, "subscription") == "remove" {
		if it := a.roster[j]; it != nil {
			delete(a.roster, j)
			it.sub = "remove"
			ss.resultIQ(e, "")
			s.pushRosterLocked(ss.user, it)
			return
		}
		ss.errorIQ(e, "cancel", "item-not-found")
		return
	}
	it := a.roster[j]
	if it == nil {
		it = &rosterItem{jid: j, sub: "none"}
		a.roster[j] = it
	}
	it.name = attr(item.Attrs, "name")
	it.groups = nil
	for _, g := range item.Children {
		if g.XMLName.Local == "group" {
			it.groups = append(it.groups, g.Text)
		}
	}
	ss.resultIQ(e, "")
	s.pushRosterLocked(ss.user, it)
}

// deliver routes a raw stanza to a full JID, a bare JID's sessions, or
// offline storage (messages only). Caller holds s.mu.
func (s *Server) deliverLocked(to, raw string, store bool) {
	if o := s.sessions[to]; o != nil {
		o.write(raw)
		return
	}
	b := bareOf(to)
	n := 0
	for _, o := range s.sessions {
		if bareOf(o.jid) == b && (o.avail || !store) {
			o.write(raw)
			n++
			if store {
				break // messages: one resource
			}
		}
	}
	if n == 0 && store {
		if a := s.users[localOf(b)]; a != nil && strings.HasSuffix(b, "@"+s.domain) {
			a.offline = append(a.offline, raw)
		}
	}
}

func stanzaXML(e *elem, from, to string) string {
	var b strings.Builder
	b.WriteString("<" + e.XMLName.Local + " from='" + xmlEscape(from) + "'")
	if to != "" {
		b.WriteString(" to='" + xmlEscape(to) + "'")
	}
	for _, a := range e.Attrs {
		if a.Name.Space != "" || a.Name.Local == "from" || a.Name.Local == "to" || a.Name.Local == "xmlns" {
			continue
		}
		b.WriteString(" " + a.Name.Local + "='" + xmlEscape(a.Value) + "'")
	}
	b.WriteString(">" + e.Inner + "</" + e.XMLName.Local + ">")
	return b.String()
}

func (ss *session) message(e *elem) {
	to := e.attr("to")
	if to == "" {
		return
	}
	raw := stanzaXML(e, ss.jid, to)
	ss.srv.mu.Lock()
	ss.srv.deliverLocked(to, raw, true)
	ss.srv.mu.Unlock()
}

func (ss *session) presence(e *elem) {
	s := ss.srv
	typ := e.attr("type")
	to := bareOf(e.attr("to"))
	s.mu.Lock()
	defer s.mu.Unlock()
	me := s.users[ss.user]
	if me == nil {
		return
	}
	switch typ {
	case "", "unavailable":
		if to != "" {
			s.deliverLocked(e.attr("to"), stanzaXML(e, ss.jid, e.attr("to")), false)
			return
		}
		first := typ == "" && !ss.avail
		ss.avail = typ == ""
		// Broadcast to contacts subscribed to us (RFC 6121 §4.2.2).
		for _, it := range me.roster {
			if it.sub == "from" || it.sub == "both" {
				s.deliverLocked(it.jid, stanzaXML(e, ss.jid, it.jid), false)
			}
		}
		if first {
			// Probe: presence of contacts we are subscribed to (§4.3).
			for _, it := range me.roster {
				if it.sub == "to" || it.sub == "both" {
					for _, o := range s.sessions {
						if bareOf(o.jid) == it.jid && o.avail {
							ss.write("<presence from='" + xmlEscape(o.jid) + "' to='" + xmlEscape(ss.jid) + "'/>")
						}
					}
				}
			}
			// Offline messages (XEP-0160).
			for _, m := range me.offline {
				ss.write(m)
			}
			me.offline = nil
		}
	case "subscribe":
		it := me.roster[to]
		if it == nil {
			it = &rosterItem{jid: to, sub: "none"}
			me.roster[to] = it
		}
		it.ask = "subscribe"
		s.pushRosterLocked(ss.user, it)
		s.deliverLocked(to, "<presence type='subscribe' from='"+xmlEscape(ss.bare())+"' to='"+xmlEscape(to)+"'/>", false)
	case "subscribed":
		it := me.roster[to]
		if it == nil {
			it = &rosterItem{jid: to, sub: "none"}
			me.roster[to] = it
		}
		it.sub = map[string]string{"none": "from", "to": "both", "from": "from", "both": "both"}[it.sub]
		s.pushRosterLocked(ss.user, it)
		if c := s.users[localOf(to)]; c != nil {
			ci := c.roster[ss.bare()]
			if ci == nil {
				ci = &rosterItem{jid: ss.bare(), sub: "none"}
				c.roster[ss.bare()] = ci
			}
			ci.ask = ""
			ci.sub = map[string]string{"none": "to", "from": "both", "to": "to", "both": "both"}[ci.sub]
			s.pushRosterLocked(localOf(to), ci)
		}
		s.deliverLocked(to, "<presence type='subscribed' from='"+xmlEscape(ss.bare())+"' to='"+xmlEscape(to)+"'/>", false)
		if ss.avail {
			s.deliverLocked(to, "<presence from='"+xmlEscape(ss.jid)+"' to='"+xmlEscape(to)+"'/>", false)
		}
	case "unsubscribe", "unsubscribed":
		s.deliverLocked(to, "<presence type='"+typ+"' from='"+xmlEscape(ss.bare())+"' to='"+xmlEscape(to)+"'/>", false)
	}
}

// cleanup unregisters the session and broadcasts unavailable presence.
func (ss *session) cleanup() {
	s := ss.srv
	if ss.jid == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.jid] == ss {
		delete(s.sessions, ss.jid)
	}
	if a := s.users[ss.user]; a != nil {
		a.lastOut = time.Now()
		if ss.avail {
			for _, it := range a.roster {
				if it.sub == "from" || it.sub == "both" {
					s.deliverLocked(it.jid, "<presence type='unavailable' from='"+xmlEscape(ss.jid)+"' to='"+xmlEscape(it.jid)+"'/>", false)
				}
			}
		}
	}
}
