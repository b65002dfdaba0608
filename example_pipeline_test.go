package secsock_test

import (
	"fmt"
	"time"

	"go.nanomsg.org/mangos/v3"

	"github.com/secsock/secsock"
)

// A sealed pipeline (SPEC.md §15): PULL workers hold the service's secret
// key, pushers its public key (and here their own key, which the workers'
// client policy checks). A message that fails a check is dropped and
// counted on the PULL side; the pusher is never told.
func ExampleNewPushSocket() {
	service, _ := secsock.GenerateKey()
	alice, _ := secsock.GenerateKey()
	mallory, _ := secsock.GenerateKey()

	worker, err := secsock.NewPullSocket()
	check(err)
	defer worker.Close()
	set(worker, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, service,
		secsock.OptionAuthorizedKeys, []secsock.PublicKey{alice.Public()},
		mangos.OptionRecvDeadline, 200*time.Millisecond)
	check(worker.Listen("inproc://example-pipeline"))

	push := func(who secsock.SecretKey, job string) *secsock.Socket {
		p, err := secsock.NewPushSocket()
		check(err)
		set(p, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionServerKey, service.Public(),
			secsock.OptionSecretKey, who)
		check(p.Dial("inproc://example-pipeline"))
		check(p.Send([]byte(job))) // nil for mallory too: nothing comes back
		return p
	}
	defer push(mallory, "rm -rf /").Close()
	defer push(alice, "resize photo 17").Close()

	job, err := worker.Recv() // mallory's message, if it came first, is dropped on the way
	check(err)
	fmt.Printf("job: %s\n", job)
	worker.Recv() // nothing more is delivered: this reads mallory's, if it came second, and times out
	fmt.Println("dropped as not authorized:", worker.Stats().Rejected[secsock.ReasonNotAuthorized])
	// Output:
	// job: resize photo 17
	// dropped as not authorized: 1
}
