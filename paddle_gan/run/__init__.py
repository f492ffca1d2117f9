"""A run folder over time: its layout, checkpoints (writing, verified loading, state.json, the list
of them, rotation and branching), the lock of its one writer, its log (metrics rows, sample grids,
VisualDL), its pictures and the best evaluation so far."""
