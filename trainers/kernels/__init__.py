"""The fused robust step: one kernel draws each point's ball samples and computes their
cross-entropy without writing activations (`fused_ce`), in fp32 or on tensor cores with a
certificate (`certificate`) that sends every sample it cannot rule out to an fp32 recompute."""
