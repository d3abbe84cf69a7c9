"""The private speed engine of `optdyn.integrators`: counter-mode random streams, the column
layout and its jaxpr interpreter, fused chunks and the per-backend plan. Nothing here changes
what a simulation computes, only how fast."""
