// Package bench is Engram's load driver (memctl bench, make bench): it starts or uses a stack,
// runs each scenario next to a same-run baseline of this machine's limits (raw JetStream
// publishes, raw Neo4j UNWIND writes), and reports every Engram figure as a ratio to its
// baseline, with the targets marked met or missed. It measures; it asserts nothing.
package bench
