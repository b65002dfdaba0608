module github.com/secsock/secsock

go 1.26.0

require (
	go.nanomsg.org/mangos/v3 v3.4.2
	golang.org/x/crypto v0.59.0
)

require golang.org/x/sys v0.50.0 // indirect
