package replay

// SetAfterCommit has every lane call f after each commit (serialized); it returns the
// function that removes it.
func SetAfterCommit(f func()) (restore func()) {
	afterCommit = f
	return func() { afterCommit = nil }
}
