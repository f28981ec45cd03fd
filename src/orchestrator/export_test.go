package orchestrator

// HumanBytes lets the external specs write sizes the way bbr logs them.
var HumanBytes = humanBytes
