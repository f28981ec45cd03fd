package director

// Simplify is simplify, for specs of the messages it rewrites.
var Simplify = simplify
