module github.com/secsock/secsock

go 1.26.0

require (
	filippo.io/edwards25519 v1.2.0
	go.nanomsg.org/mangos/v3 v3.4.2
	golang.org/x/crypto v0.59.0
)

require (
	github.com/Microsoft/go-winio v0.5.2 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
