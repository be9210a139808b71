"""Link prediction with graph-free students: GLNN- and LLP-style distillation, EHDM's heuristic teachers and gate.
"""
