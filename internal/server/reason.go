package server

// Reason says why a message was not delivered. The root package's Reason
// constants have the same values.
type Reason uint8

// Reasons, in the order of the checks.
const (
	ReasonNone Reason = iota
	ReasonMalformed
	ReasonUnknownVersion
	ReasonUnknownKind
	ReasonUnsupported // unknown suite or flags: refused UNSUPPORTED_FEATURE
	ReasonWeakKey
	ReasonForged
	ReasonBadVouch
	ReasonNotAuthorized
	ReasonStale
	ReasonReplayed
	ReasonRetry            // a duplicate: resent from the reply cache, or its request is pending
	ReasonBusy             // hinted BUSY: the budget for scalar multiplications is spent
	ReasonInDoubt          // refused IN_DOUBT: maybe delivered before, cannot tell
	ReasonUnknownEpoch     // refused UNKNOWN_EPOCH: the request names an epoch key not accepted here
	ReasonStoreUnavailable // refused STORE_UNAVAILABLE: the shared replay store could not be asked (§17)
	ReasonUnknownTicket    // refused UNKNOWN_TICKET: a hybrid ticket that does not open here (§16)
	ReasonHybridRequired   // refused HYBRID_REQUIRED: a request without the hybrid mode (§16)
	ReasonNotSecsock       // not a secsock message at all (SPEC.md §6 step 1): dropped, or delivered as plain by a permissive server
	ReasonOversize         // refused TOO_LARGE: the opened body is over Policy.MaxBody
	NumReasons
)
