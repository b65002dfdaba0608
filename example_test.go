package secsock_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/secsock/secsock"
	_ "go.nanomsg.org/mangos/v3/transport/inproc"
)

// Sealed request and reply over inproc: the server's public key is all the
// client needs.
func Example() {
	serverKey, err := secsock.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}

	server, _ := secsock.NewRepSocket()
	defer server.Close()
	server.SetOption(secsock.OptionMechanism, secsock.MechanismCurve)
	server.SetOption(secsock.OptionSecretKey, serverKey)
	if err := server.Listen("inproc://example"); err != nil {
		log.Fatal(err)
	}
	go func() {
		req, err := server.Recv()
		if err == nil {
			server.Send(append([]byte("echo: "), req...))
		}
	}()

	client, _ := secsock.NewReqSocket()
	defer client.Close()
	client.SetOption(secsock.OptionMechanism, secsock.MechanismCurve)
	client.SetOption(secsock.OptionServerKey, serverKey.Public())
	if err := client.Dial("inproc://example"); err != nil {
		log.Fatal(err)
	}
	client.Send([]byte("hello"))
	reply, err := client.Recv()
	fmt.Printf("%s %v\n", reply, err)
	// Output: echo: hello <nil>
}

// A client whose key is not authorized learns it from Recv (or
// Authenticate) within one round trip, from a refusal only the server
// could have made.
func Example_notAuthorized() {
	serverKey, _ := secsock.GenerateKey()
	alice, _ := secsock.GenerateKey()
	mallory, _ := secsock.GenerateKey()

	server, _ := secsock.NewRepSocket()
	defer server.Close()
	server.SetOption(secsock.OptionMechanism, secsock.MechanismCurve)
	server.SetOption(secsock.OptionSecretKey, serverKey)
	server.SetOption(secsock.OptionAuthorizedKeys, []secsock.PublicKey{alice.Public()})
	server.Listen("inproc://example-refused")
	go server.Recv() // the REP side answers refusals inside Recv

	client, _ := secsock.NewReqSocket()
	defer client.Close()
	client.SetOption(secsock.OptionMechanism, secsock.MechanismCurve)
	client.SetOption(secsock.OptionServerKey, serverKey.Public())
	client.SetOption(secsock.OptionSecretKey, mallory)
	client.Dial("inproc://example-refused")

	err := client.Authenticate()
	fmt.Println(errors.Is(err, secsock.ErrNotAuthorized))
	// Output: true
}

// Public keys print as 40-character Z85, the ZeroMQ CURVE text form, and
// parse back; secret keys never print their secret.
func ExampleParsePublicKey() {
	secret, _ := secsock.NewSecretKey([]byte("an example secret key, 32 bytes"[:31] + "!"))
	pub := secret.Public()
	parsed, err := secsock.ParsePublicKey(pub.String())
	fmt.Println(len(pub.String()), parsed == pub, err)
	fmt.Println(secret.String() == "SecretKey(public="+pub.String()+")")
	// Output:
	// 40 true <nil>
	// true
}
