package artifact

// SetRemoveAll replaces how Local.Delete removes a backup's directory,
// for specs that cut a delete short; it returns the undo.
func SetRemoveAll(f func(string) error) (restore func()) {
	old := removeAll
	removeAll = f
	return func() { removeAll = old }
}
