"""The per-symbol state machine: phases, events, the transition table and its runner."""
