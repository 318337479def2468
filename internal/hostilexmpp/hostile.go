package hostilexmpp

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// Mode is what the server sends after its stream header.
type Mode string

// Modes.
const (
	Whitespace Mode = "whitespace" // an endless whitespace run between elements
	Text       Mode = "text"       // <stream:features> with an endless text run
	Children   Mode = "children"   // <stream:features> with endless empty children
	Body       Mode = "body"       // a <message><body> that never ends
	Attribute  Mode = "attribute"  // <stream:features a='… that never ends
	Nesting    Mode = "nesting"    // elements nested without end
)

// Modes lists every mode.
var Modes = []Mode{Whitespace, Text, Children, Body, Attribute, Nesting}

const header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='h1' from='localhost' version='1.0'>"

func (m Mode) prefix() string {
	switch m {
	case Text:
		return "<stream:features>"
	case Children:
		return "<stream:features>"
	case Body:
		return "<message from='a@localhost' to='b@localhost'><body>"
	case Attribute:
		return "<stream:features a='"
	case Nesting:
		return "<stream:features>"
	}
	return ""
}

func (m Mode) chunk() []byte {
	unit := map[Mode]string{Whitespace: " \n\t", Text: "x", Children: "<a/>", Body: "y", Attribute: "z", Nesting: "<a>"}[m]
	return bytes.Repeat([]byte(unit), 64<<10/len(unit))
}

// Server is a running hostile server.
type Server struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	sent   int64
	budget int64
}

// Start listens on 127.0.0.1 and answers every connection in mode, sending
// at most budget bytes per connection.
func Start(mode Mode, budget int64) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, budget: budget}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, mode)
			}()
		}
	}()
	return s, nil
}

func (s *Server) serve(c net.Conn, mode Mode) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	go func() {
		// Drain what the client writes; a closed connection ends it.
		b := make([]byte, 4096)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
		}
	}()
	n, err := c.Write([]byte(header + mode.prefix()))
	total := int64(n)
	chunk := mode.chunk()
	for err == nil && total < s.budget {
		n, err = c.Write(chunk)
		total += int64(n)
	}
	s.mu.Lock()
	s.sent += total
	s.mu.Unlock()
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Sent returns the bytes written to connections that ended.
func (s *Server) Sent() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// Close stops the server and waits for its connections.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}
